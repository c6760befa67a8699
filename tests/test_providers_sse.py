"""The incremental SSE decoder: any split of the byte stream gives the same events."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pointsman.errors import UpstreamProtocolError
from pointsman.providers.sse import SSEDecoder, SSEEvent, encode_event

STREAM = (
    'data: {"content": "café ✓ 🚀 東京"}\n\n'
    ": a comment line\n"
    "event: content_block_delta\r\n"
    'data: {"a": 1}\r\n\r\n'
    "data: line one\rdata: line two\r\r"
    "id: 7\nretry: 1500\ndata:no-space\n\n"
    "data: [DONE]\n\n"
).encode()

EXPECTED = [
    SSEEvent('{"content": "café ✓ 🚀 東京"}'),
    SSEEvent('{"a": 1}', event="content_block_delta"),
    SSEEvent("line one\nline two"),
    SSEEvent("no-space", id="7", retry=1500),
    SSEEvent("[DONE]", id="7", retry=1500),  # id and retry persist across events, as in the spec
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[last:cut])
        last = cut
    events += decoder.feed(data[last:])
    return events + decoder.close()


def test_whole_stream_at_once() -> None:
    assert decode_in_pieces(STREAM, []) == EXPECTED


def test_every_single_split_point_including_mid_utf8_and_between_cr_and_lf() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode_in_pieces(STREAM, [cut]) == EXPECTED, f"split at byte {cut}"


def test_one_byte_at_a_time() -> None:
    assert decode_in_pieces(STREAM, list(range(len(STREAM)))) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_set_of_splits(cuts: list[int]) -> None:
    assert decode_in_pieces(STREAM, cuts) == EXPECTED


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=6), st.data())
def test_encode_then_decode_round_trips_any_text(texts: list[str], data: st.DataObject) -> None:
    texts = [t.replace("\r", " ") for t in texts]  # a bare CR inside data is a line break by the spec
    wire = b"".join(encode_event(json.dumps({"t": t}, ensure_ascii=False)) for t in texts)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=8))
    got = [json.loads(e.data)["t"] for e in decode_in_pieces(wire, cuts)]
    assert got == texts


def test_event_without_its_blank_line_is_dropped_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: partial") == []
    assert decoder.close() == []


def test_invalid_utf8_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError, match="not valid UTF-8"):
        SSEDecoder().feed(b"data: \xff\xfe\n\n")


def test_line_over_the_limit_is_a_protocol_error() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    with pytest.raises(UpstreamProtocolError, match="without a line break"):
        decoder.feed(b"data: " + b"x" * 100)


def test_huge_event_within_the_limit_passes() -> None:
    payload = "y" * (2 << 20)
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    wire = encode_event(payload)
    for i in range(0, len(wire), 65536):
        events += decoder.feed(wire[i : i + 65536])
    assert [len(e.data) for e in events] == [len(payload)]
