"""The upstream side: pooled connections that die, upstreams that stop mid-body, oversize
response heads, and framing that must never be desynchronised by a truncated exchange."""

import socket
import time

from helpers import Closed, RawConn, request_bytes
from upstream import pattern_bytes

U = "http://upstream.test"
H = [("Host", "upstream.test")]


def test_pooled_connection_closed_by_upstream_is_not_reused(proxy, upstream):
    r = proxy.get(U + "/fixed?n=10&close_after=0.2")
    assert r.status_code == 200
    time.sleep(0.6)  # the upstream has dropped the idle keep-alive connection by now
    r = proxy.get(U + "/fixed?n=11")
    assert r.status_code == 200, "a request was sent on a dead pooled connection: %d %s" % (r.status_code, r.text)
    assert r.content == pattern_bytes(11)


def test_upstream_connection_close_is_honoured(proxy, upstream):
    with proxy.session() as s:
        r = s.get(U + "/connclose", timeout=5)
        assert r.status_code == 200 and r.content == b"bye"
        r = s.get(U + "/fixed?n=12", timeout=5)
        assert r.status_code == 200 and r.content == pattern_bytes(12)
    got = upstream.wait_requests(2)
    assert got[0].conn_id != got[1].conn_id


def test_upstream_idle_closes_pooled_connection(sluice_factory, upstream):
    s = sluice_factory({"timeouts": {"upstream_idle": "1s"}})
    assert s.get(U + "/fixed?n=1").status_code == 200
    conn_id = upstream.wait_requests(1)[0].conn_id
    deadline = time.monotonic() + 4
    while conn_id not in upstream.closed_at and time.monotonic() < deadline:
        time.sleep(0.05)
    assert conn_id in upstream.closed_at, "pooled upstream connection kept past upstream_idle"


def test_truncated_request_body_does_not_poison_the_pool(proxy, upstream):
    # client promises 100 bytes, sends 10 and goes away: the upstream connection that
    # got the partial body must not carry the next request (it would be read as body)
    c = RawConn(proxy.port)
    c.send(request_bytes("POST", U + "/echo", H + [("Content-Length", "100")], b"0123456789"))
    time.sleep(0.3)
    c.close()
    time.sleep(0.2)
    for i in range(3):
        r = proxy.get(U + "/fixed?n=%d" % (20 + i), timeout=5)
        assert r.status_code == 200 and r.content == pattern_bytes(20 + i)
    got = upstream.wait_requests(3)
    assert [q.path for q in got] == ["/fixed"] * 3, [q.describe() for q in got]


def test_truncated_response_body_is_not_passed_as_complete(proxy):
    with RawConn(proxy.port, timeout=5) as c:
        c.send(request_bytes("GET", U + "/truncated?n=1000&send=500", H))
        r = c.read_head()
        assert r.status == 200
        # whatever framing the proxy chose, the client must see the body end early
        # (connection closed), never a well-framed 500-byte "complete" body
        if r.header("content-length") is not None:
            assert r.header("content-length") == "1000"
            try:
                c._read_exact(1000)
                raise AssertionError("got 1000 bytes from a body the upstream cut at 500")
            except Closed:
                pass
        else:
            assert (r.header("transfer-encoding") or "").lower() == "chunked", r.headers
            try:
                body = bytearray()
                while True:
                    line = c._read_until(b"\r\n")[:-2]
                    size = int(line.split(b";")[0], 16)
                    if size == 0:
                        raise AssertionError("truncated upstream body ended with a clean last-chunk")
                    body += c._read_exact(size)
                    c._read_exact(2)
            except Closed:
                pass


def test_upstream_stall_mid_body_hits_io_idle(sluice_factory):
    s = sluice_factory({"timeouts": {"io_idle": "1s"}})
    t0 = time.monotonic()
    with RawConn(s.port, timeout=10) as c:
        c.send(request_bytes("GET", U + "/slow?chunks=2&size=100&delay=20", H))
        r = c.read_head()
        assert r.status == 200
        assert c.is_closed(6.0), "stalled body not cut off by io_idle"
        assert len(c.buf) < 200
    assert time.monotonic() - t0 < 6


def test_oversize_response_head_is_502(proxy):
    r = proxy.get(U + "/bighead?size=40000")
    assert r.status_code == 502
    assert r.headers.get("X-Sluice-Error")
    assert r.json()["error"] == "upstream"


def test_response_head_within_limit_passes(proxy):
    r = proxy.get(U + "/bighead?size=20000")
    assert r.status_code == 200 and r.content == b"big"


def test_client_abort_mid_download_releases_upstream(proxy, upstream):
    c = RawConn(proxy.port)
    c.send(request_bytes("GET", U + "/stream?n=%d" % (200 * 1024 * 1024), H))
    c.read_head()
    c._fill()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    conn_id = upstream.wait_requests(1)[0].conn_id
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and conn_id not in upstream.closed_at:
        time.sleep(0.05)
    assert conn_id in upstream.closed_at, "upstream connection kept streaming after the client left"
    sent = upstream.stream_sent.get(conn_id, 0)
    assert sent < 200 * 1024 * 1024


def test_pipelined_block_then_allow(proxy, upstream):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", "http://blocked.example/", [("Host", "blocked.example")])
               + request_bytes("GET", U + "/fixed?n=6", H))
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == 403
    assert r2.status == 200 and r2.body == pattern_bytes(6)
    assert [q.path for q in upstream.wait_requests(1)] == ["/fixed"]
