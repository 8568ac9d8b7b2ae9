"""The file `duban serve` writes in the data dir while it runs, so `duban doctor` (and the
user) find the embedded Prefect server and know whether serve is still up."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "serve.json"


@dataclass(frozen=True)
class ServeState:
    """Where a running `duban serve` put things."""

    pid: int
    api_url: str
    ui_url: str
    portal_url: str

    def running(self) -> bool:
        """True if the process that wrote the file still exists."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def write_serve_state(data_dir: Path, state: ServeState) -> Path:
    """Write `state` to `<data_dir>/serve.json` (replacing it atomically); returns the path."""
    path = data_dir / STATE_FILE
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(state), ensure_ascii=False), encoding="utf-8")
    partial.replace(path)
    return path


def read_serve_state(data_dir: Path) -> ServeState | None:
    """The state a `duban serve` left in `data_dir`; None if there is none or it is unreadable."""
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ServeState(
            pid=int(raw["pid"]),
            api_url=str(raw["api_url"]),
            ui_url=str(raw["ui_url"]),
            portal_url=str(raw["portal_url"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_serve_state(data_dir: Path) -> None:
    """Remove the state file (serve stopped)."""
    (data_dir / STATE_FILE).unlink(missing_ok=True)
