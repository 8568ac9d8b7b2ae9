"""Runtime wiring for the CLI and the demo: Prefect's defaults, settings for children, logs.

The database handle lives in `tasks.store` (re-exported here for the CLI).
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr

from models.settings import Settings
from tasks.store import Store, open_store, store_for

__all__ = [
    "Store",
    "configure_prefect_defaults",
    "open_store",
    "prefect_logs_to_file",
    "settings_environment",
    "store_for",
]


def configure_prefect_defaults(settings: Settings) -> None:
    """Point Prefect at duban's data dir and quiet it, unless the user configured it already.

    Must run before `prefect` is imported for the embedded defaults to take effect. The
    server's foreman service stays on (Prefect's default): it marks workers whose heartbeats
    stopped OFFLINE, so `duban doctor` does not count dead workers as online.
    """
    home = (settings.data_dir / "prefect").resolve()
    if "PREFECT_HOME" not in os.environ:
        home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as `DUBAN_*` environment variables (paths absolute, secrets in clear).

    For child processes that must see exactly this configuration wherever they run (a flow
    run's working directory is the project dir, where the user's `duban.toml` is not).
    """
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, Path):
            text = str(value.resolve())
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, StrEnum):
            text = value.value
        elif isinstance(value, list | tuple | dict | set):
            text = json.dumps(list(value) if isinstance(value, set | tuple) else value)
        else:
            text = str(value)
        env[f"DUBAN_{name.upper()}"] = text
    if not settings.database_url:
        env["DUBAN_DATABASE_URL"] = settings.effective_database_url
    return env


def prefect_logs_to_file(log_file: Path) -> Path:
    """Send Prefect's console logs (this process and its temporary server) to `log_file`.

    Writes a copy of Prefect's own logging configuration, with the console and debug
    handlers replaced by a file handler, next to `log_file` and points
    PREFECT_LOGGING_SETTINGS_PATH at it; returns that path. Must run before `prefect` is
    imported. Logs sent to the Prefect API (the UI's run logs) are unchanged.
    """
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise RuntimeError("prefect is not installed")
    default = Path(spec.origin).parent / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text(encoding="utf-8"))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = {"class": "logging.FileHandler", "filename": str(log_file), "encoding": "utf-8"}
    config["handlers"]["console"] = to_file | {"level": 0, "formatter": "standard"}
    config["handlers"]["debug"] = to_file | {"level": 0, "formatter": "debug"}
    settings_path = log_file.with_name("prefect-logging.yml")
    settings_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(settings_path)
    return settings_path
