"""Knowing when an HTTP/1.1 request has fully arrived, from the bytes received so far.

The buffering worker (``buffered_worker.py``) reads every request whole before a worker
spends any time on it; this module answers its one question, "is this all of it?", for
a request line and headers, then a body by Content-Length or by chunked encoding. A
request that is malformed counts as complete: gunicorn's own parser then refuses it with
its (JSON) error page, exactly as it would have on a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_END = b"\r\n\r\n"


@dataclass
class Progress:
    """What the bytes so far show: done or not, and whether a 100 Continue is due."""

    complete: bool
    expects_continue: bool = False
    header_length: int = 0


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
    length, chunked, expects = _framing(bytes(data[start:end]))
    body = memoryview(data)[header_length:]
    if chunked:
        done = chunked_body_complete(body)
    elif length is None:
        done = True
    else:
        done = len(body) >= length
    return Progress(done, expects and not done and not body, header_length)


def _framing(head: bytes) -> tuple[int | None, bool, bool]:
    """(Content-Length, chunked, Expect: 100-continue) from a header block; a length
    that is not a number counts as none (the parser refuses it)."""
    length: int | None = None
    chunked = expects = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = max(0, int(value.strip()))
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"expect":
            expects = value.strip().lower() == b"100-continue"
    return length, chunked, expects


def chunked_body_complete(body: memoryview | bytes) -> bool:
    """True once the last chunk and the trailers have arrived, or when the encoding is
    broken (nothing more would help)."""
    data = bytes(body)
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return len(data) - pos > 1024  # a size line this long is broken
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return True
        if size < 0 or not size_text.isalnum():
            return True
        if size == 0:
            rest = data[line_end + 2:]
            return rest.startswith(b"\r\n") or HEADER_END in rest
        next_pos = line_end + 2 + size + 2
        if len(data) < next_pos:
            return False
        pos = next_pos


def without_expect(data: bytes, header_length: int) -> bytes:
    """The request with its ``Expect`` header removed (the worker answered it already)."""
    head = data[:header_length].split(b"\r\n")
    kept = [line for line in head if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept) + data[header_length:]
