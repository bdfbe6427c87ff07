"""When a request has fully arrived (request_buffer.py, used by the buffering worker)."""

from __future__ import annotations

import pytest

from api_plugin.serving.request_buffer import (
    chunked_body_complete,
    request_progress,
    without_expect,
)

HEAD = b"POST /x HTTP/1.1\r\nHost: h\r\n"
LIMIT = 64 * 1024


@pytest.mark.parametrize("data,complete", [
    (b"GET /x HTTP/1.1\r\nHost: h\r\n", False),
    (b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", True),
    (b"\r\n\r\nGET /x HTTP/1.1\r\n\r\n", True),
    (HEAD + b"Content-Length: 5\r\n\r\nabc", False),
    (HEAD + b"Content-Length: 5\r\n\r\nabcde", True),
    (HEAD + b"content-length: 0\r\n\r\n", True),
    (HEAD + b"Content-Length: nope\r\n\r\n", True),  # the parser refuses it
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", True),  # broken: hand it over
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", True),
    (b"GET /" + b"a" * (LIMIT + 1), True),  # over the header limit: the parser refuses
])
def test_request_progress(data: bytes, complete: bool) -> None:
    assert request_progress(data, LIMIT).complete is complete


def test_expect_100_continue_is_answered_once_and_removed() -> None:
    data = HEAD + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    progress = request_progress(data, LIMIT)
    assert progress.expects_continue and not progress.complete
    stripped = without_expect(data, progress.header_length)
    assert b"Expect" not in stripped and stripped.endswith(b"Content-Length: 3\r\n\r\n")
    assert not request_progress(data + b"ab", LIMIT).expects_continue  # body under way


def test_chunked_body_split_anywhere() -> None:
    body = b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n"
    for cut in range(len(body)):
        assert not chunked_body_complete(body[:cut])
    assert chunked_body_complete(body)
