"""`tasks.files.write_documents` (督办单 and reports): the bytes given, mode 0644
whatever the umask, an existing file replaced, the directory created, no temporary file
left behind, and the first error raised."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.files import write_documents


@pytest.fixture(params=[0o022, 0o077, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _listing(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.name: (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        for path in sorted(directory.iterdir())
    }


def test_the_bytes_given_readable_by_all_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    documents = [(f"督办〔2021〕第{n}号督办单.docx", os.urandom(n * 1000)) for n in range(1, 5)]
    folder = tmp_path / "data" / "orders"  # neither folder exists yet
    write_documents(folder, [(folder / name, data) for name, data in documents])
    assert _listing(folder) == {name: (data, 0o644) for name, data in documents}


def test_an_existing_file_is_replaced_and_nothing_else_is_left(tmp_path: Path) -> None:
    target = tmp_path / "督办〔2021〕第1号督办单.docx"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_documents(tmp_path, [(target, b"new"), (tmp_path / "b.docx", b"")])
    assert _listing(tmp_path) == {target.name: (b"new", 0o644), "b.docx": (b"", 0o644)}


def test_nothing_to_write_creates_nothing(tmp_path: Path) -> None:
    write_documents(tmp_path / "orders", [])
    assert not (tmp_path / "orders").exists()


def test_the_first_error_is_raised_and_the_files_before_it_stay(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()  # a directory where a file should go: the rename fails
    documents = [(tmp_path / "a.docx", b"a"), (tmp_path / "taken", b"b"), (tmp_path / "c", b"c")]
    with pytest.raises(OSError, match="taken"):
        write_documents(tmp_path, documents)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.docx", "taken"]
    assert list((tmp_path / "taken").iterdir()) == []
