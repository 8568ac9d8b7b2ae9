"""Reading plan documents (text, .docx, .xlsx, YAML/JSON) into the canonical plan format.

Pure: no database and no Prefect. The entry points are in `models.plan_reader.document`.
"""
