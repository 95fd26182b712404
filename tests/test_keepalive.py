"""Early answers never poison a kept-alive connection (a real server, a raw socket).

An answer sent before the request body is read leaves the body in the connection; if the
connection stayed open, the server would read that body as the next request and the
client's next request on the same connection would hang. Every such answer must close.
"""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlsplit

import pytest

from .edge_helpers import ferrite_serve

pytestmark = pytest.mark.slow

BIG = 400 * 1024  # well over the default max_body_bytes, well under a socket buffer pair
CONFIG = """
[edge]
cors_origins = ["https://example.com"]
"""


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed); status 0 if the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, {}, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def early_answer_then_next_request(url: str, request: bytes) -> tuple[int, dict, bool]:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        # the server may close while a huge body is still being sent
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        status, headers, _ = read_response(sock)
        # The same connection, a valid request: either the server closed it (and said so)
        # or it answers at once; it must never hang.
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            follow_status, _, _ = read_response(sock)
        except (BrokenPipeError, ConnectionResetError):
            follow_status = 0
        except TimeoutError:
            pytest.fail(f"the next request on the connection hung after a {status}")
        closed = follow_status == 0 or closed_by_peer(sock)
        return status, headers, closed


def post(body: bytes, extra: str = "", content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    return (f"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode() + body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ferrite_serve(tmp_path_factory.mktemp("keepalive"), config=CONFIG) as running:
        yield running


@pytest.mark.parametrize(("name", "request_bytes", "status"), [
    ("body over the limit, declared", post(b"x" * BIG), 413),
    ("body over the limit, chunked",
     b"POST /api/event HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"".join(b"%x\r\n%s\r\n" % (16384, b"y" * 16384) for _ in range(25)) + b"0\r\n\r\n",
     413),
    ("headers over the limit", post(b"{}", "X-Junk: " + "j" * 20000 + "\r\n"), 431),
    ("origin not allowed", post(b'{"n":"pageview","u":"https://example.com/","d":"x"}' * 2000,
                                "Origin: https://evil.example\r\n"), 403),
])
def test_early_answers_close_the_connection(server, name, request_bytes, status):
    got, headers, closed = early_answer_then_next_request(server.url, request_bytes)
    assert got == status, name
    assert headers.get("connection", "").lower() == "close", name
    assert closed, f"{name}: the connection stayed open with an unread body in it"


def test_a_bad_header_line_gets_400_and_a_closed_connection(server):
    got, _, closed = early_answer_then_next_request(
        server.url, b"POST /api/event HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n{}")
    assert got == 400
    assert closed


def test_a_rejected_body_that_was_read_keeps_the_connection(server):
    """A 400 for a body that was read whole is not early: keep-alive goes on."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(post(b"not json"))
        status, headers, body = read_response(sock)
        assert status == 400 and b'"field"' in body
        assert headers.get("connection", "").lower() != "close"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
