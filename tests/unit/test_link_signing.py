"""The links' own signing (`notifications.links._dumps`) gives itsdangerous's tokens exactly."""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest

from models.settings import Settings
from notifications import links


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2, "checkin", 738000],
        [123456789, 42, "checkin", 999999],
        ["instruct", 7, 3, "leader", 738100],
        ["department", 5, 738200],
        [0, 0, "", 0],
        {"键": "中文内容" * 20, "n": list(range(40))},  # compresses: the `.` form
        ["a" * 300],
        [-5, True, None, 1.5, '引号"与\\反斜杠\n', "checkin"],  # the encoder's own cases
        [10**30, "", "\u2028", 3],
        ("tuple", 1),
    ],
)
@pytest.mark.parametrize("salt", [links._SALT, links._INSTRUCT_SALT, links._DEPARTMENT_SALT])
def test_fast_signing_matches_itsdangerous(payload: Any, salt: str) -> None:
    settings = Settings(secret_key="unit-test-secret-key-0123456789")  # type: ignore[arg-type]
    expected = str(links._serializer(settings, salt).dumps(payload))
    assert links._dumps(settings, payload, salt) == expected


def _token_like(rng: random.Random) -> bytes:
    ids = [rng.randint(0, 10 ** rng.randint(1, 8)), int(str(rng.randint(1, 9)) * rng.randint(1, 8))]
    purpose = rng.choice(["checkin", "attachment", "department", "", "1111"])
    text = f'[{rng.choice(ids)},{rng.choice(ids)},"{purpose}",{rng.randint(0, 800000)}]'
    return text.encode()


def _repetitive(rng: random.Random) -> bytes:
    unit = bytes(rng.choice(b'0123456789,"[]ab') for _ in range(rng.randint(1, 6)))
    return (unit * 40)[: rng.randint(0, 40)]


def _random_bytes(rng: random.Random) -> bytes:
    alphabet = rng.choice([b"01", b"0123456789", b'[],"checkin0123456789', bytes(range(256))])
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def test_the_compression_choice_is_zlibs_own() -> None:
    """Short payloads are measured with a small compressor first: the same choice and the
    same bytes as `zlib.compress` itself, compressible or not (`_SMALL_PAYLOAD` and above)."""
    rng = random.Random(12)
    payloads = [
        make(rng) for _ in range(4000) for make in (_token_like, _repetitive, _random_bytes)
    ]
    compressed = 0
    for data in payloads:
        expected = zlib.compress(data)
        wanted = expected if len(expected) < len(data) - 1 else None
        assert links._shorter_compressed(data) == wanted, data
        compressed += wanted is not None and len(data) <= links._SMALL_PAYLOAD
    assert compressed > 100  # the small compressor's "shorter" answers are checked too
