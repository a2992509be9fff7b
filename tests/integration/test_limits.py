"""Limits and timeouts that clients control: header_read, idle keep-alive, max_connections,
and bounded buffering toward a slow reader."""

import socket
import threading
import time

from helpers import Closed, RawConn, request_bytes, rss_kib, slow_factor
from upstream import pattern_bytes

U = "http://upstream.test"


def slowloris(port, stop, result):
    """Trickle a never-ending head one byte per 0.5 s; record when the proxy cuts us off."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        data = b"GET http://upstream.test/fixed HTTP/1.1\r\nHost: upstream.test\r\nX-Slow: " + b"a" * 1000
        for b in data:
            if stop.is_set():
                break
            s.sendall(bytes([b]))
            try:
                got = s.recv(4096)
                if got == b"":
                    result["closed_after"] = time.monotonic() - t0
                    return
                result.setdefault("got", b"")
                result["got"] += got
            except socket.timeout:
                pass
            except ConnectionResetError:
                result["closed_after"] = time.monotonic() - t0
                return
            time.sleep(0.5)
    except (BrokenPipeError, ConnectionResetError):
        result["closed_after"] = time.monotonic() - t0
    finally:
        result.setdefault("ended_after", time.monotonic() - t0)


def test_header_read_timeout_cuts_off_slowloris(sluice_factory, upstream):
    s = sluice_factory({"timeouts": {"header_read": "2s"}})
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=slowloris, args=(s.port, stop, result))
    t.start()
    t.join(12)
    stop.set()
    t.join()
    assert "closed_after" in result, "slowloris client still connected after %.1fs" % result.get("ended_after", 0)
    # header_read bounds the whole head, not the gap between bytes
    assert result["closed_after"] < 5.0, result
    if result.get("got"):
        assert result["got"].split(b" ")[1] in (b"400", b"408"), result["got"][:200]
    assert upstream.snapshot()["bytes_received"] == 0


def test_slowloris_does_not_hold_the_worker(sluice_factory, upstream):
    s = sluice_factory({"workers": 1, "timeouts": {"header_read": "10s"}})
    stop = threading.Event()
    threads = []
    for _ in range(5):
        t = threading.Thread(target=slowloris, args=(s.port, stop, {}))
        t.start()
        threads.append(t)
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        r = s.get(U + "/fixed?n=10", timeout=5)
        assert r.status_code == 200 and r.content == pattern_bytes(10)
        assert time.monotonic() - t0 < 1.0 * slow_factor()
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_idle_keepalive_connection_is_closed(sluice_factory):
    s = sluice_factory({"timeouts": {"idle": "1s"}})
    with RawConn(s.port) as c:
        c.send(request_bytes("GET", U + "/fixed?n=5", [("Host", "upstream.test")]))
        assert c.read_response().status == 200
        assert not c.is_closed(0.5), "closed before the idle timeout"
        assert c.is_closed(3.0), "idle keep-alive connection not closed after idle timeout"


def test_idle_timeout_does_not_cut_active_connection(sluice_factory):
    s = sluice_factory({"timeouts": {"idle": "1s"}})
    with RawConn(s.port) as c:
        for _ in range(5):
            c.send(request_bytes("GET", U + "/fixed?n=5", [("Host", "upstream.test")]))
            assert c.read_response().status == 200
            time.sleep(0.6)


def test_slow_response_body_not_cut_by_idle_timeout(sluice_factory):
    # idle is for keep-alive between requests; a response in progress is governed by io_idle
    s = sluice_factory({"timeouts": {"idle": "1s", "io_idle": "10s"}})
    r = s.get(U + "/slow?chunks=4&size=100&delay=0.8", timeout=15)
    assert r.status_code == 200 and len(r.content) == 400


def test_max_connections(sluice_factory, upstream):
    s = sluice_factory({"limits": {"max_connections": 4}})
    time.sleep(0.3)  # let sluice reap the readiness probe's connection
    held = []
    try:
        # establish 4 connections, each proven counted by a served request
        for _ in range(4):
            c = RawConn(s.port, timeout=3)
            held.append(c)
            c.send(request_bytes("GET", U + "/fixed?n=1", [("Host", "upstream.test")]))
            assert c.read_response().status == 200
        before = len(upstream.snapshot()["requests"])
        served = False
        try:
            extra = RawConn(s.port, timeout=1.5)
            try:
                extra.send(request_bytes("GET", U + "/fixed?n=2", [("Host", "upstream.test")]))
                r = extra.read_response()
                served = r.status == 200
            except (Closed, socket.timeout, ConnectionResetError, BrokenPipeError):
                served = False
            finally:
                extra.close()
        except OSError:
            served = False
        assert not served, "a 5th connection was served with max_connections: 4"
        assert len(upstream.snapshot()["requests"]) == before
    finally:
        for c in held:
            c.close()
    # once slots are free, new connections are served again
    deadline = time.monotonic() + 5
    while True:
        try:
            r = s.get(U + "/fixed?n=3", timeout=2)
            if r.status_code == 200:
                break
        except Exception:
            pass
        assert time.monotonic() < deadline, "no connection served after freeing slots"
        time.sleep(0.2)


def test_slow_reader_is_backpressured(sluice_factory, upstream):
    s = sluice_factory({"timeouts": {"io_idle": "30s"}})
    base = rss_kib(s.proc.pid)
    n = 200 * 1024 * 1024
    c = RawConn(s.port, timeout=10)
    try:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(request_bytes("GET", U + "/stream?n=%d" % n, [("Host", "upstream.test")]))
        c.read_head()
        time.sleep(3.0)  # read nothing while the upstream pushes as fast as it can
        grown = rss_kib(s.proc.pid) - base
        sent = max(upstream.stream_sent.values() or [0])
        assert grown < 48 * 1024, "sluice RSS grew %d KiB for a client that reads nothing" % grown
        assert sent < 64 * 1024 * 1024, "upstream could push %d bytes to a stalled client" % sent
        # and the stream still completes once the client reads
        got = len(c.buf)
        while got < n:
            d = c.sock.recv(1 << 20)
            if not d:
                break
            got += len(d)
        assert got == n
    finally:
        c.close()


def test_slow_upstream_reader_backpressures_upload(proxy, upstream):
    n = 200 * 1024 * 1024
    base = rss_kib(proxy.proc.pid)
    block = pattern_bytes(1 << 20)
    result = {}

    def upload():
        try:
            with RawConn(proxy.port, timeout=30) as c:
                c.send(request_bytes("POST", U + "/slowread?delay=3",
                                     [("Host", "upstream.test"), ("Content-Length", str(n))]))
                for _ in range(n // len(block)):
                    c.send(block)
                r = c.read_response()
                result["status"] = r.status
                result["body"] = r.body
        except Exception as e:  # noqa: BLE001
            result["error"] = repr(e)

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(2.0)  # the upstream reads nothing for 3 s
    grown = rss_kib(proxy.proc.pid) - base
    t.join(60)
    assert grown < 48 * 1024, "sluice RSS grew %d KiB buffering an upload the upstream is not reading" % grown
    assert "error" not in result, result
    assert result["status"] == 200
    q = upstream.wait_requests(1)[0]
    assert q.body_len == n
