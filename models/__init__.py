"""The duban domain: typed ORM tables, pydantic schemas and the pure supervision rules."""
