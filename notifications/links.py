"""Signed, expiring form links bound to one check-in, one department and one purpose.

A token is `payload.signature` (URL-safe base64, HMAC-SHA256 keyed by the settings' secret
key through itsdangerous). The payload carries the check-in id, the department id, the
purpose and the last local date on which the link is valid (the due date plus
`link_valid_days_after_due`). Unknown, tampered, expired and wrong-purpose tokens all raise
the same `InvalidLink`, so callers cannot tell them apart and neither can an attacker.

Verification here is pure (no database). Whether the check-in still accepts answers (not
cancelled, still owned by the department) is checked by the caller against the database.
Tokens are secrets: never log them; log `token_digest(token)` if a reference is needed.

Instruct tokens (`make_instruct_token`, purpose `instruct`) let one leader write an
instruction (批示) on one item: signed under their own salt, with the purpose first in a
five-element payload, so a form token never verifies as an instruct token, nor the reverse.

Department tokens (`make_department_token`, purpose `department`) open one department's
read-only page (本部门督办事项): their own salt, the purpose first in a three-element
payload, valid through `link_valid_days_after_due` days after the local day of the email
that carries them (every email carries a fresh one, so the link a department last received
keeps working); no other kind of token verifies as one, nor the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from models.clock import local_date
from models.errors import DubanError
from models.limits import add_days
from models.settings import Settings
from models.vocabulary import RecipientRole

PURPOSE_CHECKIN = "checkin"
_SALT = "duban.link.v1"


class InvalidLink(DubanError):
    """The link is unknown, tampered with, expired, for another purpose, or closed."""

    def __init__(self) -> None:
        super().__init__("链接无效或已过期。")


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token grants: answering `purpose` for one check-in and department."""

    checkin_id: int
    department_id: int
    purpose: str
    expires_on: date


def _serializer(settings: Settings, salt: str = _SALT) -> URLSafeSerializer:
    return _serializer_for(settings.secret_key.get_secret_value(), salt)


@lru_cache(maxsize=16)
def _serializer_for(secret: str, salt: str) -> URLSafeSerializer:
    """One serializer per secret and salt (building one costs as much as signing a token;
    a serializer holds no state between calls, so one instance serves every link)."""
    return URLSafeSerializer(secret, salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


@lru_cache(maxsize=16)
def _signing_key(secret: str, salt: str) -> bytes:
    """The HMAC key itsdangerous derives from `secret` and `salt` (its own derivation)."""
    return _serializer_for(secret, salt).make_signer().derive_key()


@lru_cache(maxsize=16)
def _keyed_mac(secret: str, salt: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with `_signing_key`, fed nothing: each token signs a `copy()`
    (keying hashes the two padded keys, as much work again as signing a short payload)."""
    return hmac.new(_signing_key(secret, salt), digestmod=hashlib.sha256)


def _b64(value: bytes) -> bytes:
    return base64.urlsafe_b64encode(value).rstrip(b"=")


# What `json.dumps(…, ensure_ascii=False, separators=(",", ":"))` builds on each call.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=256)
def _json_string(value: str) -> str:
    return _COMPACT_JSON.encode(value)


def _compact_json(payload: Any) -> str:
    """`_COMPACT_JSON.encode(payload)`; a list of ints and strings (every token's payload)
    is joined here, the same text without the encoder's per-call set-up."""
    if payload.__class__ is not list:
        return _COMPACT_JSON.encode(payload)
    parts = []
    for value in payload:
        if value.__class__ is int:
            parts.append(int.__repr__(value))
        elif value.__class__ is str:
            parts.append(_json_string(value))
        else:
            return _COMPACT_JSON.encode(payload)
    return "[" + ",".join(parts) + "]"


def _dumps(settings: Settings, payload: Any, salt: str = _SALT) -> str:
    """`_serializer(settings, salt).dumps(payload)`, byte for byte, without itsdangerous's
    per-call work (a new signer and a key derivation per token): compact JSON, compressed
    only when that is shorter (then a leading `.`), URL-safe base64 without padding, `.`,
    the HMAC-SHA256 of that under the derived key. Verification still goes through
    itsdangerous (`_canonical_payload`), which signs again and compares."""
    return _signed(settings.secret_key.get_secret_value(), salt, payload)


def _signed(secret: str, salt: str, payload: Any) -> str:
    """`_dumps` under `secret` itself."""
    data = _compact_json(payload).encode()
    compressed = _shorter_compressed(data)
    value = _b64(data) if compressed is None else b"." + _b64(compressed)
    mac = _keyed_mac(secret, salt).copy()
    mac.update(value)
    return (value + b"." + _b64(mac.digest())).decode("ascii")


# The longest payload whose compressed length `_shorter_compressed` first measures with a
# small compressor: form, attachment and department tokens (about 20 bytes and their ids).
_SMALL_PAYLOAD = 32


def _shorter_compressed(data: bytes) -> bytes | None:
    """`zlib.compress(data)` if it is shorter than `data` by more than one byte (when
    itsdangerous sends the payload compressed), else None.

    `zlib.compress` sets up ~256 KB of state, which the allocator hands back to the system
    and faults in again on the next call (~40 µs a token in a pass). A payload of at most
    `_SMALL_PAYLOAD` bytes is measured first with a 512-byte window and a 256-entry hash
    table (4 KB): on so short an input zlib finds the same matches (every earlier position
    is within the window and its hash chain's budget) and writes the same block, so the
    length, which is all the choice needs, is the same. `tests/unit/test_link_signing.py`
    compares the two on structured and random payloads."""
    if len(data) <= _SMALL_PAYLOAD:
        small = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 9, 1)
        if len(small.compress(data)) + len(small.flush()) >= len(data) - 1:
            return None
    compressed = zlib.compress(data)
    return compressed if len(compressed) < len(data) - 1 else None


def _canonical_payload(token: str, serializer: URLSafeSerializer) -> Any:
    """The payload of `token` if it is signed by `serializer` and spelled canonically (its
    payload signed again gives `token` byte for byte); else `InvalidLink`."""
    if not token or len(token) > 400:
        raise InvalidLink
    try:
        payload = serializer.loads(token)
        canonical = str(serializer.dumps(payload))
    except (BadData, ValueError, TypeError, OverflowError):
        raise InvalidLink from None
    if not hmac.compare_digest(canonical.encode(), token.encode("utf-8", "replace")):
        raise InvalidLink
    return payload


def _unexpired(expires_ordinal: int, now: datetime) -> date:
    """The expiry date a token's payload names, if `now`'s local day is not past it; else
    (or when the ordinal is no date) `InvalidLink`."""
    try:
        expires_on = date.fromordinal(expires_ordinal)
    except (ValueError, OverflowError):
        raise InvalidLink from None
    if local_date(now) > expires_on:
        raise InvalidLink
    return expires_on


def link_expiry(*, settings: Settings, due_date: date, issued_on: date | None = None) -> date:
    """The last local date on which a link for a check-in due on `due_date` is accepted:
    `link_valid_days_after_due` after the due date, or after `issued_on` when the email
    carrying it goes out later (an instruction or a return on a long-overdue check-in must
    not carry a link that is already dead)."""
    start = due_date if issued_on is None else max(due_date, issued_on)
    return add_days(start, settings.link_valid_days_after_due)


def make_token(
    *,
    settings: Settings,
    checkin_id: int,
    department_id: int,
    due_date: date,
    purpose: str = PURPOSE_CHECKIN,
    issued_on: date | None = None,
) -> str:
    """Sign a token for (`checkin_id`, `department_id`, `purpose`) expiring after the due
    date (or after `issued_on`, if later: `link_expiry`)."""
    expires_on = link_expiry(settings=settings, due_date=due_date, issued_on=issued_on)
    payload = [int(checkin_id), int(department_id), purpose, expires_on.toordinal()]
    return _dumps(settings, payload)


def verify_token(
    token: str, *, settings: Settings, now: datetime, purpose: str = PURPOSE_CHECKIN
) -> LinkClaims:
    """Return the claims of a valid `token` for `purpose` at `now`, or raise `InvalidLink`.

    The link is valid through the whole local (Asia/Shanghai) day of its expiry date. Only
    the canonical spelling verifies: the claims are signed again and must give `token`
    byte for byte, so padding, trailing characters or altered spare bits are refused.
    """
    payload = _canonical_payload(token, _serializer(settings))
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or not all(isinstance(payload[i], int) for i in (0, 1, 3))
        or isinstance(payload[0], bool)
        or payload[2] != purpose
    ):
        raise InvalidLink
    checkin_id, department_id, token_purpose, expires_ordinal = payload
    expires_on = _unexpired(expires_ordinal, now)
    return LinkClaims(
        checkin_id=checkin_id,
        department_id=department_id,
        purpose=token_purpose,
        expires_on=expires_on,
    )


def form_url(
    *,
    settings: Settings,
    checkin_id: int,
    department_id: int,
    due_date: date,
    issued_on: date | None = None,
) -> str:
    """The absolute check-in form URL for one department's check-in (for an email sent on
    `issued_on`)."""
    token = make_token(
        settings=settings,
        checkin_id=checkin_id,
        department_id=department_id,
        due_date=due_date,
        issued_on=issued_on,
    )
    return f"{settings.public_url}/c/{token}"


def token_digest(token: str) -> str:
    """A short, non-reversible reference to a token, safe for logs and CSRF binding.

    Rate limits are keyed on `claims_key` of the verified claims, not on this digest: a
    digest differs for every spelling of a string.
    """
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:16]


def claims_key(claims: LinkClaims) -> str:
    """The rate-limit key of a link: what it grants, however the URL was spelled and
    whichever due date it was issued for (every link to one check-in shares one budget).
    """
    return f"{claims.purpose}:{claims.checkin_id}:{claims.department_id}"


PURPOSE_INSTRUCT = "instruct"
_INSTRUCT_SALT = "duban.link.instruct.v1"


@dataclass(frozen=True)
class InstructClaims:
    """What a verified instruct token grants: one leader (the 分管领导 or 主要负责人 of
    `department_id`, by `role`) writing an instruction on one item."""

    item_id: int
    department_id: int
    role: str
    purpose: str
    expires_on: date


def make_instruct_token(
    *, settings: Settings, item_id: int, department_id: int, role: str, expires_on: date
) -> str:
    """Sign an instruct token for one item and one leader (`role` of `department_id`).

    Signed under its own salt and carrying the purpose `instruct` first, in a payload of
    another length than a form token's: neither kind verifies as the other.
    """
    payload = [PURPOSE_INSTRUCT, int(item_id), int(department_id), role, expires_on.toordinal()]
    return _dumps(settings, payload, _INSTRUCT_SALT)


def verify_instruct_token(token: str, *, settings: Settings, now: datetime) -> InstructClaims:
    """The claims of a valid instruct `token` at `now`, or `InvalidLink` (as `verify_token`:
    canonical spelling only, valid through the local day of its expiry)."""
    payload = _canonical_payload(token, _serializer(settings, _INSTRUCT_SALT))
    if (
        not isinstance(payload, list)
        or len(payload) != 5
        or payload[0] != PURPOSE_INSTRUCT
        or not all(
            isinstance(payload[i], int) and not isinstance(payload[i], bool) for i in (1, 2, 4)
        )
        or payload[3] not in {RecipientRole.LEADER.value, RecipientRole.HEAD.value}
    ):
        raise InvalidLink
    _, item_id, department_id, role, expires_ordinal = payload
    expires_on = _unexpired(expires_ordinal, now)
    return InstructClaims(
        item_id=item_id,
        department_id=department_id,
        role=role,
        purpose=PURPOSE_INSTRUCT,
        expires_on=expires_on,
    )


def instruct_url(
    *, settings: Settings, item_id: int, department_id: int, role: str, now: datetime
) -> str:
    """The absolute leader-instruction URL for one item and one leader (for emails), valid
    for `instruct_link_valid_days` from the local day of `now`."""
    token = make_instruct_token(
        settings=settings,
        item_id=item_id,
        department_id=department_id,
        role=role,
        expires_on=add_days(local_date(now), settings.instruct_link_valid_days),
    )
    return f"{settings.public_url}/i/{token}"


def instruct_claims_key(claims: InstructClaims) -> str:
    """The rate-limit key of an instruct link (what it grants, however it is spelled)."""
    return f"{claims.purpose}:{claims.item_id}:{claims.department_id}:{claims.role}"


def instruct_links(
    *,
    settings: Settings,
    item_id: int,
    department_id: int,
    recipients: Sequence[object],
    now: datetime,
) -> list[dict[str, object]]:
    """One instruct link per leader among a notice's `recipients` (`{role, name, email}`
    dicts; roles `leader` and `head` of `department_id`), for an email's template:
    `{leader, url, expires_on}`. Other recipients get none."""
    links: list[dict[str, object]] = []
    seen: set[str] = set()
    expires_on = add_days(local_date(now), settings.instruct_link_valid_days)
    for recipient in recipients:
        if not isinstance(recipient, dict):
            continue
        role = str(recipient.get("role") or "")
        if role not in {RecipientRole.LEADER.value, RecipientRole.HEAD.value} or role in seen:
            continue
        seen.add(role)
        token = make_instruct_token(
            settings=settings,
            item_id=item_id,
            department_id=department_id,
            role=role,
            expires_on=expires_on,
        )
        name = str(recipient.get("name") or "")
        links.append(
            {
                "leader": f"{RecipientRole.label_of(role)} {name}".strip(),
                "url": f"{settings.public_url}/i/{token}",
                "expires_on": expires_on,
            }
        )
    return links


PURPOSE_ATTACHMENT = "attachment"


def attachment_token(
    *, settings: Settings, attachment_id: int, department_id: int, now: datetime
) -> str:
    """Sign a download token for one attachment of `department_id`, valid through the local
    day `attachment_link_days` after `now`; purpose `attachment` (a form link never opens it).
    """
    expires_on = add_days(local_date(now), settings.attachment_link_days)
    payload = [int(attachment_id), int(department_id), PURPOSE_ATTACHMENT, expires_on.toordinal()]
    return _dumps(settings, payload)


def verify_attachment_token(token: str, *, settings: Settings, now: datetime) -> tuple[int, int]:
    """`(attachment_id, department_id)` of a valid download token at `now`, else `InvalidLink`
    (tampered, expired, or a token for another purpose such as a check-in form link).
    """
    claims = verify_token(token, settings=settings, now=now, purpose=PURPOSE_ATTACHMENT)
    return claims.checkin_id, claims.department_id


def attachment_url(
    *, settings: Settings, attachment_id: int, department_id: int, now: datetime
) -> str:
    """The absolute signed download URL of one attachment (`/f/<token>`)."""
    token = attachment_token(
        settings=settings, attachment_id=attachment_id, department_id=department_id, now=now
    )
    return f"{settings.public_url}/f/{token}"


PURPOSE_DEPARTMENT = "department"
_DEPARTMENT_SALT = "duban.link.department.v1"


@dataclass(frozen=True)
class DepartmentClaims:
    """What a verified department token grants: reading one department's own page."""

    department_id: int
    purpose: str
    expires_on: date


def department_link_expiry(*, settings: Settings, issued_on: date) -> date:
    """The last local date a department-page link mailed on `issued_on` is accepted: the
    same lifetime as a form link (`link_valid_days_after_due`), counted from the mailing."""
    return add_days(issued_on, settings.link_valid_days_after_due)


def make_department_token(*, settings: Settings, department_id: int, expires_on: date) -> str:
    """Sign a department-page token for `department_id` valid through `expires_on`.

    Signed under its own salt with the purpose `department` first, in a payload of another
    length than a form, attachment or instruct token's: none verifies as another kind.
    """
    return _department_token(
        settings.secret_key.get_secret_value(), int(department_id), expires_on.toordinal()
    )


@lru_cache(maxsize=4096)
def _department_token(secret: str, department_id: int, expires_ordinal: int) -> str:
    """The department token of `make_department_token`, signed once per department and
    expiry: every email of a department on one day carries the same one."""
    return _signed(secret, _DEPARTMENT_SALT, [PURPOSE_DEPARTMENT, department_id, expires_ordinal])


def verify_department_token(token: str, *, settings: Settings, now: datetime) -> DepartmentClaims:
    """The claims of a valid department `token` at `now`, or `InvalidLink` (canonical
    spelling only, valid through the local day of its expiry, as `verify_token`)."""
    payload = _canonical_payload(token, _serializer(settings, _DEPARTMENT_SALT))
    if (
        not isinstance(payload, list)
        or len(payload) != 3
        or payload[0] != PURPOSE_DEPARTMENT
        or not all(isinstance(payload[i], int) and not isinstance(payload[i], bool) for i in (1, 2))
    ):
        raise InvalidLink
    _, department_id, expires_ordinal = payload
    expires_on = _unexpired(expires_ordinal, now)
    return DepartmentClaims(
        department_id=department_id, purpose=PURPOSE_DEPARTMENT, expires_on=expires_on
    )


def department_url(*, settings: Settings, department_id: int, issued_on: date) -> str:
    """The absolute URL of one department's own page (`/d/<token>`) for an email sent on
    the local day `issued_on`."""
    token = make_department_token(
        settings=settings,
        department_id=department_id,
        expires_on=department_link_expiry(settings=settings, issued_on=issued_on),
    )
    return f"{settings.public_url}/d/{token}"


def department_claims_key(claims: DepartmentClaims) -> str:
    """The rate-limit key of a department link (what it grants, however it is spelled)."""
    return f"{claims.purpose}:{claims.department_id}"
