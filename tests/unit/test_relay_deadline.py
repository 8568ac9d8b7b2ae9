"""`SendDeadline`: a per-reply and an overall limit on one send, with one timer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notifications.smtp import SendDeadline


async def _replies(deadline: SendDeadline, waits: list[float]) -> None:
    for wait in waits:
        deadline.waiting()
        await asyncio.sleep(wait)


async def test_each_reply_has_its_own_limit() -> None:
    deadline = SendDeadline(per_reply=0.2, overall=5)
    async with deadline:
        await _replies(deadline, [0.08] * 5)  # 0.4 s in all, no reply over 0.2 s
    assert not deadline.expired


async def test_a_slow_reply_times_out_after_the_per_reply_limit() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = SendDeadline(per_reply=0.1, overall=5)
    with pytest.raises(TimeoutError):
        async with deadline:
            await _replies(deadline, [0.02, 0.02, 3])
    assert deadline.expired
    assert 0.14 <= loop.time() - started < 1


async def test_the_whole_send_times_out_after_the_overall_limit() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = SendDeadline(per_reply=1, overall=0.15)
    with pytest.raises(TimeoutError):
        async with deadline:
            await _replies(deadline, [0.05] * 20)
    assert 0.15 <= loop.time() - started < 1


async def test_before_the_first_command_only_the_overall_limit_applies() -> None:
    deadline = SendDeadline(per_reply=0.05, overall=5)
    async with deadline:
        await asyncio.sleep(0.12)  # connecting: aiosmtplib's own timeouts apply there
    assert not deadline.expired


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    async def send() -> None:
        async with SendDeadline(per_reply=5, overall=5):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(send())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_quick_send_arms_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)
    deadline = SendDeadline(per_reply=30, overall=60)
    async with deadline:
        for _ in range(4):
            deadline.waiting()
            await asyncio.sleep(0)
    monkeypatch.undo()
    assert len(armed) == 1


async def test_a_hold_stops_both_limits_until_resume() -> None:
    """Waiting for a slot of the relay's window (between `hold` and `resume`) is not the
    server's time: neither the reply nor the overall limit runs meanwhile."""
    deadline = SendDeadline(per_reply=0.05, overall=0.1)
    async with deadline:
        deadline.waiting()
        deadline.hold()
        await asyncio.sleep(0.2)
        deadline.resume()
        await asyncio.sleep(0.02)
    assert not deadline.expired


async def test_after_resume_what_was_left_of_the_overall_limit_applies() -> None:
    loop = asyncio.get_running_loop()
    deadline = SendDeadline(per_reply=5, overall=0.15)
    with pytest.raises(TimeoutError):
        async with deadline:
            await asyncio.sleep(0.1)
            deadline.hold()
            await asyncio.sleep(0.2)
            deadline.resume()
            resumed = loop.time()
            await asyncio.sleep(5)
    assert deadline.expired
    assert 0.04 <= loop.time() - resumed < 0.5
