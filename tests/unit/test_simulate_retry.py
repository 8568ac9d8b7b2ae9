"""The simulation's shared Prefect clients retry a 503 from the embedded server soon."""

from __future__ import annotations

import httpx

from flows.simulate import SHORT_RETRIES, short_retry_after


def _answer(
    request: httpx.Request, status: int, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=request)


def test_a_503_is_retried_after_a_short_doubling_wait_then_with_prefects_own() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:4200/api/task_runs/")
    waits = []
    for _attempt in range(SHORT_RETRIES + 1):
        response = _answer(request, 503)
        short_retry_after(response)
        waits.append(response.headers.get("Retry-After"))
    assert waits == ["0.1", "0.2", "0.4", "0.8", None]


def test_other_answers_and_a_servers_own_retry_after_are_left_alone() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:4200/api/health")
    ok = _answer(request, 200)
    short_retry_after(ok)
    assert "Retry-After" not in ok.headers
    busy = _answer(request, 503, {"Retry-After": "5"})
    short_retry_after(busy)
    assert busy.headers["Retry-After"] == "5"
