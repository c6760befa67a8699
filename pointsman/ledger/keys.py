"""API keys: shown once, stored only as a SHA-256 hash, found by a short prefix, compared in constant time.

A key looks like ``pm-`` + 43 URL-safe characters (256 random bits). Its first 12 characters are its *prefix*:
stored in clear, unique, used to find the row and to name the key in listings. The full key is never stored or
logged; a SHA-256 of 256 random bits needs no salt or slow hash (there is nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from pointsman.db import write_transaction
from pointsman.errors import AuthenticationError, InvalidRequestError, UnknownNameError
from pointsman.ledger.ledger import BUDGET_PERIODS, Ledger
from pointsman.ledger.models import Account, ApiKey
from pointsman.ledger.money import usd_to_pico

__all__ = ["KEY_PREFIX", "CreatedKey", "KeyInfo", "KeyStore", "generate_key", "hash_key", "key_prefix"]

KEY_PREFIX = "pm-"
_PREFIX_LEN = 12
_DUMMY_HASH = hashlib.sha256(b"pointsman: no such key").hexdigest()

accounts = cast(Table, Account.__table__)
api_keys = cast(Table, ApiKey.__table__)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(key: str) -> str:
    return key[:_PREFIX_LEN]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a valid key grants: its account, whether it is an admin key, and its limits."""

    id: int
    prefix: str
    name: str | None
    account_id: int
    account_name: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None
    budget_pico: int | None
    budget_period: str | None
    rpm_limit: int | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: str  # shown once, never stored
    info: KeyInfo
    account_created: bool


class KeyStore:
    """Create, authenticate, list and revoke API keys (on the ledger's database)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.engine = ledger.engine

    def create(
        self,
        account: str,
        *,
        credit_usd: Decimal | str | int | None = None,
        name: str | None = None,
        admin: bool = False,
        budget_usd: Decimal | str | int | None = None,
        budget_period: str = "month",
        rpm_limit: int | None = None,
    ) -> CreatedKey:
        """A new key for ``account``. A missing account is created with ``credit_usd`` (default: the signup
        credit); for an existing account ``credit_usd``, when given, is granted on top of its balance."""
        if budget_period not in BUDGET_PERIODS:
            raise InvalidRequestError(
                f"unknown budget period {budget_period!r}; use one of {', '.join(BUDGET_PERIODS)}",
                param="budget_period",
            )
        budget = usd_to_pico(budget_usd, what="budget") if budget_usd is not None else None
        if budget is not None and budget <= 0:
            raise InvalidRequestError("a budget must be a positive amount of USD", param="budget")
        if rpm_limit is not None and rpm_limit <= 0:
            raise InvalidRequestError("a requests-per-minute limit must be a positive integer", param="rpm")
        info, created = self.ledger.ensure_account(account, grant_usd=credit_usd)
        if not created and credit_usd is not None and usd_to_pico(credit_usd, what="credit") > 0:
            self.ledger.grant(info.id, credit_usd, note="granted with a new key")
        now = self.ledger.now()
        for _ in range(5):
            key = generate_key()
            try:
                with write_transaction(self.engine) as conn:
                    key_id = conn.execute(
                        insert(api_keys)
                        .values(
                            account_id=info.id,
                            prefix=key_prefix(key),
                            key_hash=hash_key(key),
                            name=name,
                            is_admin=admin,
                            created_at=now,
                            budget_pico=budget,
                            budget_period=budget_period if budget is not None else None,
                            budget_used_pico=0,
                            rpm_limit=rpm_limit,
                        )
                        .returning(api_keys.c.id)
                    ).scalar_one()
            except IntegrityError:  # a prefix collision (48 random bits): draw again
                continue
            return CreatedKey(key, self._info(key_id), created)
        raise RuntimeError("could not draw a unique API key prefix in 5 tries")

    def authenticate(self, key: str | None) -> KeyInfo:
        """The key's info, or AuthenticationError (401) for a missing, malformed, unknown or revoked key."""
        if not key:
            raise AuthenticationError(
                "no API key: send it as 'Authorization: Bearer <key>'; create one with `pointsman keys create`"
            )
        with self.engine.connect().execution_options(pointsman_read_only=True) as conn:
            row = conn.execute(_info_query().where(api_keys.c.prefix == key_prefix(key))).first()
        stored = row.key_hash if row is not None else _DUMMY_HASH
        matches = hmac.compare_digest(hash_key(key), stored)
        if row is None or not matches:
            raise AuthenticationError(
                "invalid API key; check it was copied whole, or create one with `pointsman keys create`"
            )
        if row.revoked_at is not None:
            raise AuthenticationError(
                "this API key was revoked; create a new one with `pointsman keys create`"
            )
        return _to_info(row)

    def list(self, account: str | None = None, *, include_revoked: bool = True) -> list[KeyInfo]:
        query = select(api_keys.c.id).order_by(api_keys.c.id)
        if account is not None:
            query = query.where(api_keys.c.account_id == self.ledger.account(account).id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect().execution_options(pointsman_read_only=True) as conn:
            ids = conn.execute(query).scalars().all()
        return [self._info(key_id) for key_id in ids]

    def revoke(self, prefix: str) -> KeyInfo:
        """Revoke the key whose prefix (as ``keys list`` shows it) is ``prefix``. Revoking twice is harmless."""
        prefix = key_prefix(prefix.strip().rstrip("…").rstrip("."))
        with write_transaction(self.engine) as conn:
            key_id = conn.execute(
                select(api_keys.c.id).where(api_keys.c.prefix == prefix)
            ).scalar_one_or_none()
            if key_id is None:
                known = conn.execute(select(api_keys.c.prefix)).scalars().all()
                raise UnknownNameError("API key prefix", prefix, known, param="key")
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.ledger.now())
            )
        return self._info(key_id)

    def _info(self, key_id: int) -> KeyInfo:
        with self.engine.connect().execution_options(pointsman_read_only=True) as conn:
            return _to_info(conn.execute(_info_query().where(api_keys.c.id == key_id)).one())


def _info_query() -> Select[Any]:
    return select(api_keys, accounts.c.name.label("account_name")).join(
        accounts, accounts.c.id == api_keys.c.account_id
    )


def _to_info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        account_id=row.account_id,
        account_name=row.account_name,
        is_admin=bool(row.is_admin),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        budget_pico=row.budget_pico,
        budget_period=row.budget_period,
        rpm_limit=row.rpm_limit,
    )
