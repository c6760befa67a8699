"""The benchmark's standard prompts: a short one (about 200 input tokens) and a long one (about 1,000), both
deterministic, so runs months apart and on different continents measure the same work.

Token counts are ``pointsman.tokens``' estimate, which errs high; providers' own counts (reported in each
sample's ``input_tokens``) are typically 10-40% lower.
"""

from __future__ import annotations

from typing import Any

from pointsman.tokens import count_message_tokens

__all__ = ["PROMPTS", "prompt_messages", "prompt_tokens"]

_STATIONS = (
    "Northgate",
    "Millbrook",
    "Harbour",
    "Castle Hill",
    "Westfield",
    "Riverside",
    "Old Quay",
    "Elm Park",
)

_SHORT = (
    "You are helping a railway signaller. Read the note below and answer in plain prose.\n\n"
    "Note: The junction at Millbrook has two routes into the harbour line. The east route is shorter but "
    "has a speed limit of 40 km/h over the old bridge; the west route is longer but allows 90 km/h for most "
    "of its length. Freight trains are heavy and slow to accelerate, so they are usually sent east. Passenger "
    "trains are usually sent west, except in the morning peak, when the west route is crowded with local "
    "services. Today the west route has a signal fault near Elm Park, and trains must stop and wait for "
    "permission to pass it, which adds about six minutes to every journey on that route.\n\n"
    "Question: Which route should the 08:15 passenger train from Northgate to Harbour take today, and why? "
    "Explain the trade-off in a few sentences."
)


def _timetable() -> str:
    lines = []
    for i in range(46):
        origin = _STATIONS[i % len(_STATIONS)]
        destination = _STATIONS[(i * 3 + 2) % len(_STATIONS)]
        if destination == origin:
            destination = _STATIONS[(i + 1) % len(_STATIONS)]
        hour, minute = 6 + (i * 17) // 60, (i * 17) % 60
        between = [s for s in _STATIONS if s not in (origin, destination)]
        calls = ", ".join(between[(i + k) % len(between)] for k in (1, 3))
        lines.append(
            f"Train {100 + i} leaves {origin} at {hour:02d}:{minute:02d} for {destination}, calling at {calls}."
        )
    return "\n".join(lines)


_LONG = (
    "You are helping a railway planner. Below is today's timetable.\n\n"
    + _timetable()
    + "\n\nQuestion: Which trains reach Harbour, directly or by calling there, before 09:00? List them with "
    "their departure times, then describe in a paragraph how the morning service could be made more even."
)

PROMPTS: dict[str, str] = {"short": _SHORT, "long": _LONG}


def prompt_messages(kind: str) -> list[dict[str, Any]]:
    """The chat messages of the standard prompt ``kind`` ("short" or "long")."""
    return [{"role": "user", "content": PROMPTS[kind]}]


def prompt_tokens(kind: str) -> int:
    """The estimated input tokens of the standard prompt ``kind``."""
    return count_message_tokens(prompt_messages(kind))
