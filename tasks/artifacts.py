"""Table artifacts in pages small enough for Prefect's event feed.

Creating or updating an artifact makes the Prefect server emit a
`prefect.artifact-collection.created` / `.updated` event whose payload carries the artifact's
whole `data`. A table artifact's data is `json.dumps(table)` (ASCII-escaped: a Chinese
character takes 6 bytes, 7 once the string is encoded again inside the event), and the server
drops, with only a log line, every event over `PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES`
(default 1,500,000). The plan table of a 5,000-item plan is 1.6 MB, so its events were lost.
`create_table_artifacts` splits a table into pages of at most `page_budget()` bytes of encoded
data: the first page keeps the key, later pages are `<key>-p2`, `<key>-p3`, ...
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

PAGE_BUDGET_BYTES = 1_000_000
"""Encoded table data per artifact page at most: two thirds of Prefect's default event limit,
the rest left for the event's envelope (ids, key, description)."""


def page_budget() -> int:
    """Bytes of table data per page: `PAGE_BUDGET_BYTES`, or two thirds of a smaller
    `PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES` configured in this process (a server run
    elsewhere with a smaller limit is not seen here)."""
    from prefect.settings import PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES

    limit = int(PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES.value())
    return min(PAGE_BUDGET_BYTES, limit * 2 // 3)


def encoded_size(rows: Sequence[dict[str, Any]]) -> int:
    """Bytes `rows` take inside an artifact event: `json.dumps` of the table, encoded again
    as a JSON string."""
    return len(json.dumps(json.dumps(list(rows))))


def _row_json(row: dict[str, Any]) -> str:
    """`row` as Prefect's `TableArtifact.format` encodes it: `json.dumps`, a NaN float as
    `null`."""
    text = json.dumps(row)
    if "NaN" in text:  # rare (a NaN, or the letters in a string): only then sanitise
        from prefect.artifacts import TableArtifact

        text = json.dumps(TableArtifact._sanitize(row))
    return text


def encoded_pages(table: Sequence[dict[str, Any]], budget: int) -> list[list[str]]:
    """`table_pages`, each row encoded once (`_row_json`); a page's data is its rows joined
    by `, ` inside `[` `]`, byte for byte `json.dumps` of the page."""
    pages: list[list[str]] = [[]]
    used = 2
    for row in table:
        text = _row_json(row)
        cost = len(json.dumps(text))  # the row and its ", " separator
        if pages[-1] and used + cost > budget:
            pages.append([])
            used = 2
        pages[-1].append(text)
        used += cost
    return pages


def table_pages(table: Sequence[dict[str, Any]], budget: int) -> list[list[dict[str, Any]]]:
    """`table` in consecutive pages of at most `budget` encoded bytes each (a single row over
    the budget gets a page of its own); one empty page for an empty table."""
    pages: list[list[dict[str, Any]]] = []
    start = 0
    for encoded in encoded_pages(table, budget):
        pages.append(list(table[start : start + len(encoded)]))
        start += len(encoded)
    return pages


def page_key(key: str, number: int) -> str:
    """The artifact key of page `number` (from 1) of `key`: `key` itself for the first."""
    return key if number == 1 else f"{key}-p{number}"


@cache
def _encoded_table_artifact() -> type[Any]:
    """A Prefect `Artifact` of type `table` whose data is given already encoded (what
    `TableArtifact` would send for the same rows), so a page is encoded once, not validated,
    walked and encoded again by `TableArtifact`; created through Prefect's own
    `Artifact.acreate` (run ids, event)."""
    from prefect.artifacts import Artifact

    class EncodedTableArtifact(Artifact):
        type: str | None = "table"
        encoded: str

        async def aformat(self) -> str:
            return self.encoded

    return EncodedTableArtifact


async def create_table_artifacts(
    *, table: Sequence[dict[str, Any]], key: str, description: str
) -> int:
    """Create the table artifact `key` in pages (`table_pages` of `page_budget()`); returns
    the page count.

    With more than one page each description ends with `（第k/n页，第a–b行）`. The pages go
    through one API client; each page's data is what `acreate_table_artifact` would send."""
    from prefect.client.orchestration import get_client

    pages = encoded_pages(table, page_budget())
    artifact = _encoded_table_artifact()
    first = 1
    async with get_client() as client:
        for number, page in enumerate(pages, start=1):
            suffix = (
                f"（第{number}/{len(pages)}页，第{first}–{first + len(page) - 1}行）"
                if len(pages) > 1
                else ""
            )
            await artifact(
                key=page_key(key, number),
                description=description + suffix,
                encoded="[" + ", ".join(page) + "]",
            ).acreate(client)
            first += len(page)
    return len(pages)
