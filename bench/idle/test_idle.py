"""Tests of the idle bench's client (python3 -m pytest bench/idle) against
a small keep-alive server on loopback that the test controls."""

import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idle  # noqa: E402
from lib import BenchError  # noqa: E402

BODY = b"x" * 1024


class Server:
    """Answers every request head with 200 and BODY, keeps connections open;
    `status` changes the answer for later requests."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(512)
        self.port = self.ls.getsockname()[1]
        self.accepted = []
        self.status = b"200 OK"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            self.accepted.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        while True:
            try:
                d = s.recv(4096)
            except OSError:
                return
            if not d:
                return
            buf += d
            while b"\r\n\r\n" in buf:
                _, _, buf = buf.partition(b"\r\n\r\n")
                head = b"HTTP/1.1 " + self.status + b"\r\nContent-Length: 1024\r\n\r\n"
                try:
                    s.sendall(head + BODY)
                except OSError:
                    return


REQ = b"GET http://127.0.0.1:1/1k.bin HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"


def test_open_hold_and_reuse():
    srv = Server()
    conns = idle.request_all([], REQ, 1024, 8, open_port=srv.port, n_open=50, timeout=10)
    assert len(conns) == 50 and all(c.done == 1 for c in conns)
    assert idle.count_dropped(conns) == 0
    again = idle.request_all(conns, REQ, 1024, 8, timeout=10)
    assert len(again) == 50 and all(c.done == 2 for c in conns)
    for c in conns:
        c.sock.close()


def test_dropped_connections_are_counted():
    srv = Server()
    conns = idle.request_all([], REQ, 1024, 8, open_port=srv.port, n_open=10, timeout=10)
    for s in srv.accepted[:3]:
        s.shutdown(socket.SHUT_RDWR)
        s.close()
    import time

    time.sleep(0.2)
    assert idle.count_dropped(conns) == 3
    with pytest.raises(BenchError):
        idle.request_all(conns, REQ, 1024, 8, timeout=10)


def test_non_200_and_wrong_length_fail():
    srv = Server()
    srv.status = b"502 Bad Gateway"
    with pytest.raises(BenchError, match="unexpected response"):
        idle.request_all([], REQ, 1024, 4, open_port=srv.port, n_open=2, timeout=10)
    with pytest.raises(BenchError, match="body length"):
        idle._response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 1024)
    assert idle._response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\nab", 1024) == 0
