"""`duban doctor` checks that need no server: public URL, SMTP refused, Prefect not configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from duban.doctor import (
    _deployed,
    check_portal,
    check_prefect,
    check_public_url,
    check_smtp,
    run_checks,
)
from models.settings import Settings

PROD_SECRET = "x" * 40


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "ok", "says"),
    [
        ("https://duban.example.org", True, ""),
        ("http://127.0.0.1:8765", False, "本机地址"),
        ("http://localhost:8765", False, "本机地址"),
        ("http://duban.example.org", False, "https"),
    ],
)
def test_public_url_in_production(url: str, ok: bool, says: str) -> None:
    check = check_public_url(
        settings(env="production", public_url=url, secret_key=PROD_SECRET, smtp_embedded=False)
    )
    assert check.ok is ok
    assert says in check.detail


def test_loopback_public_url_is_fine_in_development() -> None:
    assert check_public_url(settings(public_url="http://127.0.0.1:8765")).ok


def test_refused_smtp_names_the_address_and_the_fix() -> None:
    check = check_smtp(settings(smtp_host="127.0.0.1", smtp_port=9, smtp_timeout_seconds=2))
    assert not check.ok
    assert check.detail.startswith("127.0.0.1:9 无法连接")
    assert check.fix == "运行 duban mail relay（内置邮件服务器随之启动）"


def test_without_a_prefect_api_the_report_says_how_to_get_one() -> None:
    (check,) = check_prefect(None, "duban-pool")
    assert not check.ok
    assert "PREFECT_API_URL" in check.fix


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    checks = run_checks(
        settings(data_dir=tmp_path, smtp_port=9, smtp_timeout_seconds=2, portal_port=9), None
    )
    failed = {check.name for check in checks if not check.ok}
    assert failed == {"数据库", "Prefect 服务器", "报送表单", "邮件服务器"}
    database = next(check for check in checks if check.name == "数据库")
    assert database.fix == "运行 duban db upgrade"


def test_a_stopped_form_is_reported_with_how_to_start_it() -> None:
    (check,) = check_portal(settings(portal_host="0.0.0.0", portal_port=9))  # noqa: S104
    assert not check.ok
    assert check.detail.startswith("http://127.0.0.1:9/healthz 无法连接")
    assert "duban portal" in check.fix


def test_deployments_named_per_plan_count_as_present() -> None:
    assert _deployed("supervise-plan", {"supervise-plan-3"})
    assert _deployed("supervise-plan", {"supervise-plan"})
    assert not _deployed("supervise-plan", {"supervise-plan-x", "supervise-item"})


def test_the_attachment_store_is_checked(tmp_path: Path) -> None:
    from duban.doctor import check_attachment_store

    in_database = check_attachment_store(settings())
    assert in_database.ok and in_database.detail == "存于数据库（每个不超过20 MB，每次最多10个）"
    shared = check_attachment_store(settings(attachment_dir=tmp_path / "evidence"))
    assert shared.ok and (tmp_path / "evidence").is_dir()
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    broken = check_attachment_store(settings(attachment_dir=blocked / "evidence"))
    assert not broken.ok
    assert "不可写" in broken.detail and "DUBAN_ATTACHMENT_DIR" in broken.fix


@pytest.mark.parametrize(
    ("values", "url"),
    [
        ({}, "http://127.0.0.1:8765"),
        ({"portal_port": 18769}, "http://127.0.0.1:18769"),
        ({"portal_host": "0.0.0.0", "portal_port": 9000}, "http://127.0.0.1:9000"),  # noqa: S104
        ({"portal_host": "::1", "portal_port": 9000}, "http://[::1]:9000"),
        (
            {"portal_port": 9000, "public_url": "https://duban.example.org/"},
            "https://duban.example.org",
        ),
    ],
)
def test_unset_public_url_follows_the_forms_port(values: dict[str, object], url: str) -> None:
    """A changed DUBAN_PORTAL_PORT alone moves the mails' links with the form (the demo's
    simulated departments followed links to 8765 while the form listened elsewhere)."""
    assert settings(**values).public_url == url


def test_unset_public_url_is_still_refused_as_loopback_in_production() -> None:
    check = check_public_url(
        settings(
            env="production",
            portal_host="0.0.0.0",  # noqa: S104
            secret_key=PROD_SECRET,
            smtp_embedded=False,
        )
    )
    assert not check.ok and "本机地址" in check.detail
