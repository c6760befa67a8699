"""Money as integer picodollars (1 USD = 10**12 pUSD): exact for every price with up to six decimals per million
tokens (finer prices round once per request, to the nearest picodollar), summable in SQL on SQLite and
PostgreSQL alike, and never a float.

A token at $0.15 per million costs 150,000 pUSD; one at $0.000001 per million costs exactly 1 pUSD.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from pointsman.errors import ConfigError, InvalidRequestError

__all__ = [
    "PICO_PER_USD",
    "Price",
    "format_usd",
    "pico_to_usd",
    "request_cost_pico",
    "token_cost_pico",
    "usd_to_pico",
]

PICO_PER_USD = 10**12
_PICO_PER_USD_PER_MTOK = 10**6  # pUSD per token for a price of 1 USD per million tokens
# One entry may move at most this much (keeps every SQL sum far inside 64 bits).
MAX_ENTRY_USD = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    """An endpoint's price in USD per million input and output tokens, exactly as the catalogue lists it."""

    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal


def usd_to_pico(usd: Decimal | str | int, *, what: str = "amount") -> int:
    """Exact picodollars for a USD amount given as a Decimal, a decimal string or an int (never a float)."""
    if isinstance(usd, float):
        raise TypeError(f"{what} must be a Decimal, str or int, never a float")
    try:
        value = Decimal(usd)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidRequestError(f"{what} {usd!r} is not a number; give USD like 10 or 2.50") from exc
    if not value.is_finite():
        raise InvalidRequestError(f"{what} {usd!r} is not a finite number; give USD like 10 or 2.50")
    if abs(value) > MAX_ENTRY_USD:
        raise InvalidRequestError(f"{what} {value} USD is over the limit of {MAX_ENTRY_USD} USD per entry")
    pico = value * PICO_PER_USD
    if pico != pico.to_integral_value():
        raise InvalidRequestError(f"{what} {value} USD has more than 12 decimal places; round it")
    return int(pico)


def pico_to_usd(pico: int) -> Decimal:
    """The exact USD value of ``pico`` picodollars."""
    return (Decimal(pico) / PICO_PER_USD).normalize() if pico else Decimal(0)


def format_usd(pico: int) -> str:
    """``$12.345678`` — six decimals, or more when the amount needs them, never rounded away."""
    usd = Decimal(pico) / PICO_PER_USD
    text = f"{usd:.6f}"
    if Decimal(text) != usd:
        text = format(usd.normalize(), "f")
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def _exact_pico(tokens: int, usd_per_mtok: Decimal) -> Decimal:
    if tokens < 0:
        raise ValueError(f"token count must be >= 0, got {tokens}")
    if usd_per_mtok < 0:
        raise ConfigError(f"price {usd_per_mtok} USD per million tokens is negative; fix the catalogue")
    return tokens * usd_per_mtok * _PICO_PER_USD_PER_MTOK


def _to_int(pico: Decimal) -> int:
    # Exact whenever prices have at most 6 decimals per million tokens; finer prices round once per request
    # to the nearest picodollar (half up), so no request is ever off by more than 0.5e-12 USD.
    return int(pico.to_integral_value(rounding=ROUND_HALF_UP))


def token_cost_pico(tokens: int, usd_per_mtok: Decimal) -> int:
    """Picodollars for ``tokens`` tokens at ``usd_per_mtok`` USD per million tokens."""
    return _to_int(_exact_pico(tokens, usd_per_mtok))


def request_cost_pico(price: Price, input_tokens: int, output_tokens: int) -> int:
    """Picodollars for one request: input tokens × input price + output tokens × output price."""
    return _to_int(
        _exact_pico(input_tokens, price.input_usd_per_mtok)
        + _exact_pico(output_tokens, price.output_usd_per_mtok)
    )
