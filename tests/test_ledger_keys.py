"""API keys: shown once, only a hash stored, prefix lookup, constant-time comparison, revoke, admin flag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from pointsman.db import create_db_engine, upgrade
from pointsman.errors import AuthenticationError, UnknownNameError
from pointsman.ledger import KeyStore, Ledger
from pointsman.ledger.keys import hash_key, key_prefix


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_db_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def keys(engine: Engine) -> KeyStore:
    return KeyStore(Ledger(engine))


def test_create_returns_the_key_once_and_stores_only_its_hash(
    keys: KeyStore, engine: Engine, tmp_path: Path
) -> None:
    created = keys.create("alice", credit_usd=3, name="laptop")
    assert created.key.startswith("pm-") and len(created.key) == 46
    assert created.account_created and created.info.account_name == "alice"
    assert keys.ledger.account("alice").balance_pico == 3 * 10**12
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT prefix, key_hash FROM api_keys")).one()
    assert stored.prefix == key_prefix(created.key) and stored.key_hash == hash_key(created.key)
    engine.dispose()  # checkpoint the WAL so the main file has everything
    for path in tmp_path.iterdir():
        assert created.key.encode() not in path.read_bytes(), path


def test_authenticate(keys: KeyStore) -> None:
    created = keys.create("alice")
    info = keys.authenticate(created.key)
    assert (info.account_name, info.is_admin, info.prefix) == ("alice", False, key_prefix(created.key))
    admin = keys.create("ops", admin=True, credit_usd=0)
    assert keys.authenticate(admin.key).is_admin


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda k: "", "no API key.*Authorization: Bearer"),
        (lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), "invalid API key"),  # right prefix, wrong secret
        (lambda k: "pm-zzzzzzzzzzzzzzzzzzzz", "invalid API key"),  # unknown prefix
        (lambda k: k + "x", "invalid API key"),
    ],
)
def test_bad_keys_are_401(keys: KeyStore, mangle: object, message: str) -> None:
    created = keys.create("alice")
    with pytest.raises(AuthenticationError, match=message) as info:
        keys.authenticate(mangle(created.key))  # type: ignore[operator]
    assert info.value.status_code == 401


def test_revoke(keys: KeyStore) -> None:
    created = keys.create("alice")
    other = keys.create("alice")
    revoked = keys.revoke(created.info.prefix + "…")
    assert revoked.revoked_at is not None
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.authenticate(created.key)
    assert keys.authenticate(other.key).account_name == "alice"
    assert keys.revoke(created.info.prefix).revoked_at == revoked.revoked_at  # twice is harmless
    with pytest.raises(UnknownNameError, match="unknown API key prefix"):
        keys.revoke("pm-nothere")


def test_list(keys: KeyStore) -> None:
    a = keys.create("alice")
    keys.create("bob", admin=True, budget_usd="1.5", budget_period="week", rpm_limit=30)
    keys.revoke(a.info.prefix)
    listed = keys.list()
    assert [k.account_name for k in listed] == ["alice", "bob"]
    bob = keys.list("bob")[0]
    assert (bob.is_admin, bob.budget_pico, bob.budget_period, bob.rpm_limit) == (
        True,
        15 * 10**11,
        "week",
        30,
    )
    assert [k.account_name for k in keys.list(include_revoked=False)] == ["bob"]
    with pytest.raises(UnknownNameError):
        keys.list("carol")


def test_existing_account_gets_the_credit_as_a_grant(keys: KeyStore) -> None:
    keys.create("alice", credit_usd=1)
    again = keys.create("alice", credit_usd=2)
    assert not again.account_created
    assert keys.ledger.account("alice").balance_pico == 3 * 10**12
    keys.create("alice")  # no --credit: nothing added
    assert keys.ledger.account("alice").balance_pico == 3 * 10**12
