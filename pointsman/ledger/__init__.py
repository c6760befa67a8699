"""Accounts, API keys, credits and pass-through billing: an append-only ledger in integer picodollars.

from pointsman.db import create_db_engine, upgrade
from pointsman.ledger import Ledger, Price

engine = create_db_engine()          # SQLite under the data dir, or POINTSMAN_DATABASE_URL
upgrade(engine)
ledger = Ledger(engine)
account = ledger.create_account("alice")                       # + the signup grant
hold = ledger.reserve(account.id, prices=price, input_tokens=120, max_output_tokens=512)
ledger.settle(hold.reservation_id, price=price, input_tokens=120, output_tokens=87)
"""

from pointsman.ledger.config import LedgerConfig
from pointsman.ledger.keys import CreatedKey, KeyInfo, KeyStore
from pointsman.ledger.ledger import AccountInfo, Charge, EntryView, Hold, Ledger
from pointsman.ledger.money import Price, format_usd, pico_to_usd, request_cost_pico, usd_to_pico

__all__ = [
    "AccountInfo",
    "Charge",
    "CreatedKey",
    "EntryView",
    "Hold",
    "KeyInfo",
    "KeyStore",
    "Ledger",
    "LedgerConfig",
    "Price",
    "format_usd",
    "pico_to_usd",
    "request_cost_pico",
    "usd_to_pico",
]
