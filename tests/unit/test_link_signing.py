"""The links' own signing (`notifications.links._dumps`) gives itsdangerous's tokens exactly."""

from __future__ import annotations

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
