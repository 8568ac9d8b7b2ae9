"""Evidence rules: type from content, lying extensions, limits, safe names, download headers."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from models.attachments import (
    AttachmentLimits,
    AttachmentRefused,
    check_count,
    content_disposition,
    format_size,
    judge_file,
    limits_of,
    safe_file_name,
    sniff_type,
)
from models.settings import Settings
from models.vocabulary import AttachmentType
from notifications.links import (
    InvalidLink,
    attachment_token,
    make_token,
    verify_attachment_token,
    verify_token,
)
from portal.server import redact_path
from tests import attachment_files as files

SAMPLES = {
    AttachmentType.PDF: files.pdf(),
    AttachmentType.PNG: files.image("PNG"),
    AttachmentType.JPEG: files.image("JPEG"),
    AttachmentType.GIF: files.image("GIF"),
    AttachmentType.WEBP: files.image("WEBP"),
    AttachmentType.DOCX: files.word(),
    AttachmentType.XLSX: files.excel(),
    AttachmentType.DOC: files.ole2("WordDocument"),
    AttachmentType.XLS: files.ole2("Workbook"),
}
LIMITS = AttachmentLimits()


def judge(name: str, data: bytes, limits: AttachmentLimits = LIMITS) -> AttachmentType:
    return judge_file(name, io.BytesIO(data), size=len(data), limits=limits).kind


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_each_allowed_type_is_sniffed_from_its_content(kind: AttachmentType) -> None:
    stream = io.BytesIO(SAMPLES[kind])
    assert sniff_type(stream) is kind
    assert stream.tell() == 0


def test_the_old_excel_stream_name_book_is_excel() -> None:
    assert sniff_type(io.BytesIO(files.ole2("Book"))) is AttachmentType.XLS


@pytest.mark.parametrize(
    "data",
    [
        files.executable(),
        files.plain_zip(),
        files.ole2("PowerPoint Document"),
        b"",
        b"just text, %PDF- not at the start",
        b"PK\x03\x04 broken zip",
    ],
)
def test_other_content_is_not_a_known_type(data: bytes) -> None:
    assert sniff_type(io.BytesIO(data)) is None


def test_a_macro_enabled_word_file_is_not_a_docx() -> None:
    source = zipfile.ZipFile(io.BytesIO(files.word()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"wordprocessingml.document.main+xml",
                    b"ms-word.document.macroEnabled.main+xml",
                )
            target.writestr(info, data)
    assert sniff_type(io.BytesIO(out.getvalue())) is None
    with pytest.raises(AttachmentRefused, match="不在允许的类型内"):
        judge("方案.docm", out.getvalue())


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("台账.PDF", AttachmentType.PDF),
        ("照片.jpeg", AttachmentType.JPEG),
        ("照片.JPG", AttachmentType.JPEG),
        ("总结.docx", AttachmentType.DOCX),
        ("统计.xls", AttachmentType.XLS),
    ],
)
def test_a_matching_extension_is_accepted_in_any_case(name: str, kind: AttachmentType) -> None:
    assert judge(name, SAMPLES[kind]) is kind


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("报告.pdf", SAMPLES[AttachmentType.DOCX]),
        ("照片.png", SAMPLES[AttachmentType.JPEG]),
        ("表格.xlsx", SAMPLES[AttachmentType.DOC]),
        ("说明.doc", SAMPLES[AttachmentType.XLS]),
        ("报告.exe", SAMPLES[AttachmentType.PDF]),
    ],
)
def test_an_extension_that_lies_about_the_content_is_refused(name: str, data: bytes) -> None:
    with pytest.raises(AttachmentRefused) as refused:
        judge(name, data)
    assert name in refused.value.reason
    assert "扩展名" in refused.value.reason
    assert "与文件内容" in refused.value.reason


def test_an_executable_named_pdf_is_refused_by_content() -> None:
    with pytest.raises(AttachmentRefused, match=r"“报告.pdf”的内容是无法识别的文件"):
        judge("报告.pdf", files.executable())


def test_a_name_without_extension_gets_the_sniffed_one() -> None:
    data = SAMPLES[AttachmentType.PNG]
    judged = judge_file("现场照片", io.BytesIO(data), size=len(data), limits=LIMITS)
    assert (judged.file_name, judged.media_type) == ("现场照片.png", "image/png")


def test_a_type_left_out_of_the_settings_is_refused() -> None:
    limits = limits_of(max_bytes=1000, max_count=2, types="pdf")
    assert judge("a.pdf", files.pdf(), limits) is AttachmentType.PDF
    with pytest.raises(AttachmentRefused, match=r"PNG图片，不在允许的类型内（PDF文档）"):
        judge("a.png", SAMPLES[AttachmentType.PNG], limits)


def test_size_and_count_limits() -> None:
    limits = AttachmentLimits(max_bytes=len(files.pdf()), max_count=2)
    assert judge("a.pdf", files.pdf(), limits) is AttachmentType.PDF
    bigger = files.pdf("more text here")
    with pytest.raises(AttachmentRefused, match=r"“a.pdf”超过\d+ 字节的大小限制"):
        judge("a.pdf", bigger, limits)
    with pytest.raises(AttachmentRefused, match="是空文件"):
        judge("a.pdf", b"", limits)
    check_count(2, limits)
    with pytest.raises(AttachmentRefused, match="本次选择了3个附件，每次最多可上传2个"):
        check_count(3, limits)


def test_default_limits_are_twenty_megabytes_and_ten_files() -> None:
    settings = Settings(_env_file=None)
    assert (settings.attachment_max_bytes, settings.attachment_max_count) == (20 * 2**20, 10)
    assert set(settings.attachment_types.split(",")) == {kind.value for kind in AttachmentType}
    assert LIMITS.hint().endswith("每个不超过20 MB，每次最多10个。")
    assert ".docx" in LIMITS.accept_attribute()


def test_settings_refuse_unknown_types_and_a_relative_shared_directory() -> None:
    with pytest.raises(ValueError, match="unknown 'exe'"):
        Settings(attachment_types="pdf,exe", _env_file=None)
    with pytest.raises(ValueError, match="absolute path"):
        Settings(attachment_dir="relative/store", _env_file=None)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\张三\\桌面\\总结.docx", "总结.docx"),
        ("报告\u202egpj.exe", "报告gpj.exe"),
        ("a\x00b\r\nc.pdf", "abc.pdf"),
        ("zero\u200bwidth.pdf", "zerowidth.pdf"),
        ('what?<is>"this"|.pdf', "what__is__this__.pdf"),
        ("  ...hidden.pdf. ", "hidden.pdf"),
        ("CON.pdf", "_CON.pdf"),
        ("", "附件"),
        ("/", "附件"),
        ("\u3000全角\u3000空格.pdf", "全角 空格.pdf"),
    ],
)
def test_safe_file_names(raw: str, shown: str) -> None:
    assert safe_file_name(raw) == shown


def test_a_long_name_keeps_its_extension() -> None:
    shown = safe_file_name("长" * 300 + ".xlsx")
    assert len(shown) == 120
    assert shown.endswith("长.xlsx")


def test_content_disposition_is_rfc_5987() -> None:
    value = content_disposition('关于"学术"活动的报告.pdf')
    assert value.startswith('attachment; filename="')
    assert "filename*=UTF-8''%E5%85%B3%E4%BA%8E" in value
    fallback = value.split('filename="')[1].split('"')[0]
    assert fallback.isascii()
    assert fallback.endswith(".pdf")
    assert "\n" not in content_disposition("a\nb.pdf")


def test_format_size() -> None:
    assert [format_size(n) for n in (12, 3072, 20 * 2**20, 1572864)] == [
        "12 字节",
        "3 KB",
        "20 MB",
        "1.5 MB",
    ]


NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
SETTINGS = Settings(secret_key="k" * 40, _env_file=None)


def test_download_tokens_are_signed_expiring_and_purpose_bound() -> None:
    token = attachment_token(settings=SETTINGS, attachment_id=7, department_id=3, now=NOW)
    assert verify_attachment_token(token, settings=SETTINGS, now=NOW) == (7, 3)
    later = NOW + timedelta(days=SETTINGS.attachment_link_days)
    assert verify_attachment_token(token, settings=SETTINGS, now=later) == (7, 3)
    with pytest.raises(InvalidLink):
        verify_attachment_token(token, settings=SETTINGS, now=later + timedelta(days=1))
    with pytest.raises(InvalidLink):
        verify_attachment_token(token[:-2] + "AA", settings=SETTINGS, now=NOW)
    other = Settings(secret_key="o" * 40, _env_file=None)
    with pytest.raises(InvalidLink):
        verify_attachment_token(token, settings=other, now=NOW)
    form = make_token(settings=SETTINGS, checkin_id=7, department_id=3, due_date=NOW.date())
    with pytest.raises(InvalidLink):
        verify_attachment_token(form, settings=SETTINGS, now=NOW)
    with pytest.raises(InvalidLink):
        verify_token(token, settings=SETTINGS, now=NOW)


def test_download_paths_are_redacted_in_the_access_log() -> None:
    token = attachment_token(settings=SETTINGS, attachment_id=7, department_id=3, now=NOW)
    redacted = redact_path(f"/f/{token}")
    assert token not in redacted
    assert redacted.startswith("/f/~")


def test_every_token_route_is_redacted_in_the_access_log() -> None:
    """Each route that takes a signed token, whatever its kind, is logged without it."""
    from sqlalchemy.orm import sessionmaker

    from models.settings import Settings
    from portal.app import create_app

    app: object = create_app(Settings(), sessionmaker())
    while not hasattr(app, "routes"):
        app = app.app  # type: ignore[attr-defined]
    token_paths = {route.path for route in app.routes if "{token}" in route.path}
    assert {"/c/{token}", "/d/{token}", "/f/{token}", "/i/{token}"} <= token_paths
    secret = "WyJpbnN0cnVjdCIsMSwyXQ.c2lnbmF0dXJl"
    for path in token_paths:
        redacted = redact_path(path.replace("{token}", secret))
        assert secret not in redacted, path
