"""An incremental Server-Sent Events decoder that survives any split of the byte stream.

Network chunks cut events anywhere: mid-line, mid-JSON, mid-UTF-8 sequence, between ``\\r`` and ``\\n``. The
decoder keeps undecoded bytes until a full line arrives and only then decodes it, so a multi-byte character cut
across two chunks is never mangled (line breaks are ASCII, so a line boundary is never inside a character).
Events are returned as soon as their blank line arrives; nothing is held back beyond the incomplete line.

The field rules follow the WHATWG "event stream interpretation": ``data`` lines join with ``\\n``, one leading
space after the colon is dropped, lines starting with ``:`` are comments, unknown fields are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from pointsman.errors import UpstreamProtocolError

__all__ = ["DEFAULT_MAX_LINE_BYTES", "SSEDecoder", "SSEEvent", "encode_event"]

DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. ``event`` is None when the stream did not name it (the default "message")."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed by those bytes.

    >>> d = SSEDecoder()
    >>> d.feed(b'data: {"a": "\\xc3')
    []
    >>> d.feed(b'\\xa9"}\\n\\n')
    [SSEEvent(data='{"a": "é"}', event=None, id=None, retry=None)]
    """

    __slots__ = ("_buf", "_data", "_event", "_id", "_max_line", "_retry", "_scan_from")

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._max_line = max_line_bytes
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add ``chunk`` and return every event it completed, in order."""
        buf = self._buf
        buf += chunk
        if b"\r" not in buf:  # the usual case (\n line ends): split once, data lines parsed inline
            return self._feed_lf(buf)
        events: list[SSEEvent] = []
        start = 0
        scan = self._scan_from
        n = len(buf)
        while True:
            cr = buf.find(b"\r", scan)
            lf = buf.find(b"\n", scan)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == n:
                    break  # a lone trailing \r: wait to see whether \n follows
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            else:
                end, nxt = lf, lf + 1
            event = self._line(bytes(buf[start:end]))
            if event is not None:
                events.append(event)
            start = scan = nxt
        if start:
            del buf[:start]
            scan -= start
        self._scan_from = max(scan, len(buf) - 1 if buf.endswith(b"\r") else len(buf))
        if len(buf) > self._max_line:
            raise _too_long(self._max_line)
        return events

    def _feed_lf(self, buf: bytearray) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        end = buf.rfind(b"\n")
        if end != -1:
            lines = bytes(buf[:end]).split(b"\n")
            del buf[: end + 1]
            data = self._data
            for raw in lines:
                if not raw:
                    event = self._dispatch()
                    if event is not None:
                        events.append(event)
                        data = self._data
                elif raw[:5] == b"data:":
                    value = raw[6:] if raw[5:6] == b" " else raw[5:]
                    try:
                        data.append(value.decode("utf-8"))
                    except UnicodeDecodeError as exc:
                        raise _not_utf8(exc) from exc
                else:
                    self._line(raw)
        self._scan_from = len(buf)  # what is left has no line break
        if len(buf) > self._max_line:
            raise _too_long(self._max_line)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a final unterminated line is processed; an event without its blank line is dropped,
        as the SSE specification requires."""
        events: list[SSEEvent] = []
        if self._buf:
            tail = bytes(self._buf).rstrip(b"\r")
            self._buf.clear()
            self._scan_from = 0
            event = self._line(tail)
            if event is not None:
                events.append(event)
        self._data, self._event, self._id, self._retry = [], None, None, None
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            return self._dispatch()
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc) from exc
        if line[0] == ":":
            return None
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        event = SSEEvent("\n".join(self._data), self._event, self._id, self._retry)
        self._data = []
        self._event = None
        return event


def _not_utf8(exc: UnicodeDecodeError) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"the upstream event stream is not valid UTF-8: {exc}")


def _too_long(limit: int) -> UpstreamProtocolError:
    return UpstreamProtocolError(
        f"an event-stream line exceeded {limit} bytes without a line break; "
        "the upstream is not sending Server-Sent Events"
    )


def encode_event(data: str, event: str | None = None) -> bytes:
    """One event in wire form. Multi-line ``data`` becomes several ``data:`` lines."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode("utf-8")
