"""`tasks.daily_pass.collector_paused`: the garbage collector pauses for a chunk and resumes."""

from __future__ import annotations

import gc

import pytest

from tasks.daily_pass import collector_paused


def test_paused_inside_and_resumed_after_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer chunk is still running
        raise RuntimeError
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
