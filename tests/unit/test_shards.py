"""The shard split of a batch pass: every candidate in exactly one shard, whatever the list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.shards import shard_items, shard_label, shard_run_name
from models.settings import DEFAULT_PASS_CHUNK_SIZE, Settings

ids = st.lists(st.integers(min_value=1, max_value=10**9), unique=True, max_size=300)


@given(candidates=ids, shards=st.integers(min_value=1, max_value=12))
def test_every_candidate_is_in_exactly_one_shard(candidates: list[int], shards: int) -> None:
    parts = [shard_items(candidates, shard, shards) for shard in range(shards)]
    flat = [item for part in parts for item in part]
    assert sorted(flat) == sorted(candidates)
    assert len(flat) == len(set(flat))
    for shard, part in enumerate(parts):
        assert part == [item for item in candidates if item in set(part)]
        assert all(item % shards == shard for item in part)


@given(candidates=ids, dropped=ids, added=ids, shards=st.integers(min_value=2, max_value=6))
def test_an_item_keeps_its_shard_when_the_candidate_list_shifts(
    candidates: list[int], dropped: list[int], added: list[int], shards: int
) -> None:
    shifted = [item for item in candidates if item not in set(dropped)] + [
        item for item in added if item not in set(candidates)
    ]
    for shard in range(shards):
        before = set(shard_items(candidates, shard, shards))
        after = set(shard_items(shifted, shard, shards))
        assert before & set(shifted) <= after
        assert after - before <= set(added)


def test_consecutive_ids_are_dealt_round_robin() -> None:
    candidates = list(range(101, 351))
    sizes = [len(shard_items(candidates, shard, 2)) for shard in range(2)]
    assert sizes == [125, 125]
    assert shard_items([7, 3, 4, 10], 1, 3) == [7, 4, 10]


@pytest.mark.parametrize(("shard", "shards"), [(0, 0), (-1, 2), (2, 2), (5, 3)])
def test_a_shard_outside_the_range_is_refused(shard: int, shards: int) -> None:
    with pytest.raises(ValueError, match="分片编号"):
        shard_items([1, 2, 3], shard, shards)


def test_shards_are_named_from_one() -> None:
    assert shard_label(0, 2) == "第1片（共2片）"
    assert shard_run_name(7, "2021-06-23", 1, 2) == "督办巡检 计划7 2021-06-23 第2片（共2片）"


def test_pass_settings_default_and_refuse_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUBAN_PASS_SHARDS", raising=False)
    monkeypatch.delenv("DUBAN_PASS_CHUNK_SIZE", raising=False)
    settings = Settings()
    assert (settings.pass_shards, settings.pass_chunk_size) == (1, DEFAULT_PASS_CHUNK_SIZE)
    monkeypatch.setenv("DUBAN_PASS_SHARDS", "2")
    monkeypatch.setenv("DUBAN_PASS_CHUNK_SIZE", "50")
    settings = Settings()
    assert (settings.pass_shards, settings.pass_chunk_size) == (2, 50)
    for name in ("DUBAN_PASS_SHARDS", "DUBAN_PASS_CHUNK_SIZE"):
        monkeypatch.setenv(name, "0")
        with pytest.raises(ValueError, match=name.removeprefix("DUBAN_").lower()):
            Settings()
        monkeypatch.setenv(name, "1")
