"""Running the demo's simulated year in a test: its own data dir, ports and settings."""

from __future__ import annotations

import asyncio

import pytest

from duban.demo.runner import DemoOptions, DemoRun, simulate_year
from duban.demo.services import pick_ports
from models.settings import Settings, get_settings


def run_demo(
    tmp_path_factory: pytest.TempPathFactory, name: str, options: DemoOptions
) -> tuple[DemoRun, Settings]:
    """Simulate `options` in a fresh data dir named `name`; the settings it ran with."""
    data_dir = tmp_path_factory.mktemp(name)
    smtp_port, portal_port = pick_ports()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUBAN_DATA_DIR", str(data_dir))
        patch.setenv("DUBAN_SMTP_PORT", str(smtp_port))
        patch.setenv("DUBAN_PUBLIC_URL", f"http://127.0.0.1:{portal_port}")
        get_settings.cache_clear()
        settings = get_settings()
        run = asyncio.run(
            simulate_year(
                settings=settings,
                options=options,
                smtp_port=smtp_port,
                portal_port=portal_port,
            )
        )
    get_settings.cache_clear()
    return run, settings
