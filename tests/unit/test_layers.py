"""The package layering the design promises: pure `models/`, I/O in `tasks/`, no CLI below.

`models/` holds decisions and tables and imports no I/O layer and no Prefect; nothing in
`models/`, `tasks/`, `flows/`, `notifications/` or `portal/` reaches up into the CLI's wiring
(`duban`); `tasks/` and `notifications/` never import the flows or the form.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "models": {"tasks", "flows", "notifications", "portal", "duban", "prefect"},
    "tasks": {"flows", "portal", "duban"},
    "notifications": {"flows", "portal", "duban"},
    "flows": {"portal", "duban"},
    "portal": {"flows", "duban"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level package of every module `path` imports (absolute imports only)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources under {package}/"
    breaches = [
        f"{path.relative_to(ROOT)} imports {root}"
        for path in files
        if "migrations" not in path.parts
        for root in sorted(imported_roots(path) & FORBIDDEN[package])
    ]
    assert breaches == []


def test_the_cli_does_not_import_prefect_before_configuring_it() -> None:
    """`duban` points Prefect at its data dir and sends Prefect's logs to a file before Prefect
    is imported (`duban.runtime.configure_prefect_defaults`, `prefect_logs_to_file`); a command
    module importing Prefect at load time undoes both (the demo printed Prefect's logs)."""
    import subprocess
    import sys

    probe = "import sys, duban.cli; print([m for m in sys.modules if m.startswith('prefect')][:3])"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "[]"
