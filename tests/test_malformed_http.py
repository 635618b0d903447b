"""Requests that are not HTTP, sent over a plain socket to `teleconsult serve`: each gets a 400,
the log holds no traceback and none of the bytes sent (the log never holds a header), and the
server keeps serving."""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest

from served import served

MARK = b"SeCrEtHeAdErVaLuE"  # would show that the raw request reached the log
MALFORMED = {
    "bad request line": b"GET / HTTP/9.9z " + MARK + b"\r\nHost: a\r\n\r\n",
    "bad method": b"G\x01T /" + MARK + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "no method": b" /" + MARK + b"\r\n\r\n",
    "header name with bytes 0x80-0xff": b"GET / HTTP/1.1\r\nHost: a\r\nX-" + MARK + b"\x80\xff\xfe: v\r\n\r\n",
    "header line without a colon": b"GET / HTTP/1.1\r\nHost: a\r\n" + MARK + b"\xff\r\n\r\n",
    "over-long header": b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + MARK + b"A" * 20_000 + b"\r\n\r\n",
    "over-long request line": b"GET /" + MARK + b"a" * 20_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, MARK) for i in range(300)) + b"\r\n",
    "bad chunked body": (b"POST /login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz" + MARK +
                         b"\r\n\r\n"),
    "bad content length": b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: -" + MARK + b"\r\n\r\nx",
}


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory.mktemp("malformed")) as running:
        yield running


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_request_gets_400_and_leaves_no_traceback_nor_its_bytes_in_the_log(server, kind):
    before = len(server.log())
    answer = send_raw(server.port, MALFORMED[kind])
    assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:200]
    with urllib.request.urlopen(server.base + "/healthz", timeout=5) as r:  # still serving
        assert r.status == 200
    log = server.log()[before:]  # what this request left
    assert "Traceback" not in log and "Error in logging" not in log, log[-3000:]
    assert MARK.decode() not in log and "\\x80" not in log and "\\xff" not in log, log[-3000:]
    assert "malformed HTTP request refused (400)" in log
