"""Knowing when an HTTP/1.1 request has fully arrived, from the bytes received so far.

The buffering worker (``buffered_worker.py``) reads every request whole before a worker
spends any time on it; this module answers its one question, "is this all of it?", for
a request line and headers, then a body by Content-Length or by chunked encoding. A
request that is malformed counts as complete: gunicorn's own parser then refuses it with
its (JSON) error page, exactly as it would have on a socket.

It also says where a complete request ends, so that a kept-alive connection's next
request can wait for its own turn. Only unambiguous framing gets an end (one
Content-Length, or ``Transfer-Encoding: chunked`` alone): anything else is served as
the connection's last request, so no two readers can disagree on where a request stops.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_END = b"\r\n\r\n"


@dataclass
class Progress:
    """What the bytes so far show: done or not, whether a 100 Continue is due, and where
    a complete request ends (None: not known, the connection closes after it)."""

    complete: bool
    expects_continue: bool = False
    header_length: int = 0
    end: int | None = None


def request_progress(data: bytes | bytearray, max_header_bytes: int) -> Progress:
    """Whether ``data`` holds a whole request (headers over ``max_header_bytes`` also
    count as complete: the parser refuses them)."""
    start = 0
    while data.startswith(b"\r\n", start):  # blank lines before a request are allowed
        start += 2
    end = data.find(HEADER_END, start)
    if end < 0:
        return Progress(len(data) > max_header_bytes)
    header_length = end + len(HEADER_END)
    framing = _framing(bytes(data[start:end]))
    body = memoryview(data)[header_length:]
    request_end: int | None
    if framing.chunked:
        body_end = chunked_body_end(body)
        done = body_end is not None
        request_end = header_length + body_end if body_end is not None and body_end >= 0 \
            else None
    elif framing.length is None:
        done, request_end = True, (header_length if framing.plain else None)
    else:
        done = len(body) >= framing.length
        request_end = header_length + framing.length if done and framing.plain else None
    return Progress(done, framing.expects and not done and not body, header_length,
                    request_end if done else None)


@dataclass
class _Framing:
    """How a header block says its body is framed."""

    length: int | None = None
    chunked: bool = False
    expects: bool = False
    #: Nothing two parsers could read differently (one length, or chunked alone).
    plain: bool = True


def _framing(head: bytes) -> _Framing:
    """The framing of a header block; a length that is not a number counts as none (the
    parser refuses it), and any doubt makes the framing not ``plain``."""
    framing = _Framing()
    lengths = encodings = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name != name.strip():  # whitespace before the colon: the parser refuses it
            framing.plain = False
        name = name.strip().lower()
        if name == b"content-length":
            lengths += 1
            text = value.strip()
            framing.length = max(0, int(text)) if text.isdigit() else None
            framing.plain = framing.plain and text.isdigit()
        elif name == b"transfer-encoding":
            encodings += 1
            framing.chunked = b"chunked" in value.lower()
            framing.plain = framing.plain and value.strip().lower() == b"chunked"
        elif name == b"expect":
            framing.expects = value.strip().lower() == b"100-continue"
    if lengths > 1 or encodings > 1 or (lengths and encodings):
        framing.plain = False
    return framing


def chunked_body_complete(body: memoryview | bytes) -> bool:
    """True once the last chunk and the trailers have arrived, or when the encoding is
    broken (nothing more would help)."""
    return chunked_body_end(body) is not None


def chunked_body_end(body: memoryview | bytes) -> int | None:
    """Where a chunked body ends (after its trailers), -1 when the encoding is broken
    (complete, but with no end to trust), None while more is to come."""
    data = bytes(body)
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return -1 if len(data) - pos > 1024 else None  # a size line this long is broken
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return -1
        if size < 0 or not size_text.isalnum():
            return -1
        if size == 0:
            rest = data[line_end + 2:]
            if rest.startswith(b"\r\n"):
                return line_end + 4
            trailers = rest.find(HEADER_END)
            return None if trailers < 0 else line_end + 2 + trailers + len(HEADER_END)
        next_pos = line_end + 2 + size + 2
        if len(data) < next_pos:
            return None
        pos = next_pos


def without_expect(data: bytes, header_length: int) -> bytes:
    """The request with its ``Expect`` header removed (the worker answered it already)."""
    head = data[:header_length].split(b"\r\n")
    kept = [line for line in head if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept) + data[header_length:]
