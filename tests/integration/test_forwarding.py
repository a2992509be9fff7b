"""Plain HTTP/1.1 forwarding: methods, bodies both ways, keep-alive, pipelining, hop-by-hop."""

import hashlib
import os
import threading
import time

import pytest

from helpers import RawConn, curl, request_bytes, sha256, slow_factor
from upstream import pattern_bytes, seeded_bytes

U = "http://upstream.test"
MIB = 1024 * 1024


def test_get_with_curl(proxy, upstream):
    r = curl(proxy.url, "-i", U + "/fixed?n=100")
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body == pattern_bytes(100)
    reqs = upstream.wait_requests(1)
    assert len(reqs) == 1
    # a proxy forwards to an origin in origin-form, not absolute-form
    assert reqs[0].target == "/fixed?n=100"
    assert reqs[0].method == "GET"


def test_get_with_requests(proxy, upstream):
    r = proxy.get(U + "/fixed?n=5000")
    assert r.status_code == 200
    assert r.content == pattern_bytes(5000)
    assert upstream.wait_requests(1)[0].header("host") is not None


def test_head_has_no_body_and_keeps_connection(proxy, upstream):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("HEAD", U + "/fixed?n=777", [("Host", "upstream.test")]))
        r = c.read_response("HEAD")
        assert r.status == 200
        assert r.header("content-length") == "777"
        # the next response must start right after the head: no stray body bytes
        c.send(request_bytes("GET", U + "/fixed?n=10", [("Host", "upstream.test")]))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == pattern_bytes(10)
    assert [q.method for q in upstream.wait_requests(2)] == ["HEAD", "GET"]


def test_head_with_curl(proxy):
    r = curl(proxy.url, "-sI", U + "/bytes?n=4096")
    assert r.returncode == 0, r.stderr
    assert b"200" in r.stdout.split(b"\r\n")[0]
    assert b"content-length: 4096" in r.stdout.lower()


def test_post_content_length(proxy, upstream):
    body = seeded_bytes(100000, 7)
    r = proxy.request("POST", U + "/echo", data=body)
    assert r.status_code == 200
    assert r.content == body
    q = upstream.wait_requests(1)[0]
    assert q.header("content-length") == "100000"
    assert not q.chunked and q.body == body


def test_put_content_length_with_curl(proxy, upstream, tmp_path):
    f = tmp_path / "put.bin"
    f.write_bytes(seeded_bytes(300000, 3))
    r = curl(proxy.url, "-X", "PUT", "--data-binary", "@%s" % f, U + "/echo", "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == f.read_bytes()
    q = upstream.wait_requests(1)[0]
    assert q.method == "PUT" and q.body_len == 300000


def test_post_chunked_request_with_curl(proxy, upstream, tmp_path):
    f = tmp_path / "c.bin"
    f.write_bytes(seeded_bytes(200000, 5))
    r = curl(proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", "@%s" % f, U + "/echo",
             "-D", tmp_path / "h.txt", "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == f.read_bytes()
    q = upstream.wait_requests(1)[0]
    assert q.body_sha256 == sha256(f.read_bytes())


def test_post_chunked_request_with_requests_generator(proxy, upstream):
    parts = [seeded_bytes(10000, i) for i in range(10)]
    r = proxy.request("POST", U + "/echo", data=iter(parts))
    assert r.status_code == 200
    assert r.content == b"".join(parts)
    q = upstream.wait_requests(1)[0]
    assert q.body_len == 100000


def test_chunked_request_with_trailers_reaches_upstream(proxy, upstream):
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer-One: t1\r\n\r\n"
    with RawConn(proxy.port) as c:
        c.send(request_bytes("POST", U + "/echo", [("Host", "upstream.test"), ("Transfer-Encoding", "chunked"),
                                                    ("Trailer", "X-Trailer-One")], body))
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"hello world"
    q = upstream.wait_requests(1)[0]
    assert q.body == b"hello world"
    assert ("X-Trailer-One", "t1") in q.trailers or any(k.lower() == "x-trailer-one" for k, _ in q.trailers)


def test_chunked_response_with_trailers(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/chunked?n=5000&chunks=5&trailers=1",
                             [("Host", "upstream.test"), ("TE", "trailers")]))
        r = c.read_response()
        assert r.status == 200
        assert r.body == pattern_bytes(5000)
        assert r.chunked, "a chunked response with trailers must stay chunked: %r" % r.headers
        assert r.trailer("X-Body-Sha256") == sha256(pattern_bytes(5000))


def test_chunked_response_with_requests(proxy):
    r = proxy.get(U + "/chunked?n=123456&chunks=7&trailers=0")
    assert r.status_code == 200
    assert r.content == pattern_bytes(123456)


def test_large_download_50mib_sha256(proxy, tmp_path):
    n = 50 * MIB
    expect = sha256(seeded_bytes(n, 11))
    out = tmp_path / "dl.bin"
    r = curl(proxy.url, U + "/bytes?n=%d&seed=11" % n, "-o", out, timeout=120)
    assert r.returncode == 0, r.stderr
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    assert os.path.getsize(out) == n
    assert h.hexdigest() == expect


def test_large_upload_50mib_content_length_sha256(proxy, upstream, tmp_path):
    n = 50 * MIB
    f = tmp_path / "up.bin"
    data = seeded_bytes(n, 12)
    f.write_bytes(data)
    r = curl(proxy.url, "--data-binary", "@%s" % f, "-H", "Content-Type: application/octet-stream",
             U + "/echo", "-D", "-", "-o", "/dev/null", timeout=120)
    assert r.returncode == 0, r.stderr
    q = upstream.wait_requests(1)[0]
    assert q.body_len == n
    assert q.body_sha256 == sha256(data)


def test_large_upload_50mib_chunked_sha256(proxy, upstream):
    n = 50 * MIB
    data = seeded_bytes(n, 13)
    pieces = (data[i: i + MIB] for i in range(0, n, MIB))
    r = proxy.request("POST", U + "/echo", data=pieces, timeout=120)
    assert r.status_code == 200
    assert r.headers["X-Request-Len"] == str(n)
    assert r.headers["X-Request-Sha256"] == sha256(data)


def test_large_chunked_download_sha256(proxy):
    n = 20 * MIB
    r = proxy.get(U + "/chunked?n=%d&chunks=64&trailers=0" % n, timeout=120)
    assert r.status_code == 200
    assert len(r.content) == n
    assert sha256(r.content) == sha256(pattern_bytes(n))


def test_expect_100_continue_with_curl(proxy, upstream, tmp_path):
    f = tmp_path / "e.bin"
    f.write_bytes(seeded_bytes(2 * MIB, 21))
    t0 = time.monotonic()
    # curl waits --expect100-timeout for the 100 before sending anyway; make that long
    # so a proxy that swallows the 100 shows up as a slow upload, not a pass.
    r = curl(proxy.url, "-v", "-H", "Expect: 100-continue", "--expect100-timeout", "8",
             "--data-binary", "@%s" % f, U + "/echo", "-o", tmp_path / "out.bin")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert b"HTTP/1.1 100 Continue" in r.stderr
    assert elapsed < 6, "upload stalled %.1fs waiting for 100 Continue" % elapsed
    assert (tmp_path / "out.bin").read_bytes() == f.read_bytes()


def test_expect_100_continue_raw(proxy, upstream):
    body = b"x" * 5000
    with RawConn(proxy.port, timeout=5) as c:
        c.send(request_bytes("POST", U + "/echo", [("Host", "upstream.test"), ("Content-Length", "5000"),
                                                    ("Expect", "100-continue")]))
        head = c.read_head()
        assert head.status == 100, "expected 100 Continue before sending the body, got %d" % head.status
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and r.body == body


def test_expect_100_continue_rejected_by_upstream(proxy, upstream):
    with RawConn(proxy.port, timeout=5) as c:
        c.send(request_bytes("POST", U + "/expect-417", [("Host", "upstream.test"), ("Content-Length", "5000"),
                                                          ("Expect", "100-continue")]))
        r = c.read_response()
        # the client must learn the final status without having to send its body
        assert r.status == 417


def test_status_204_and_304_then_reuse(proxy, upstream):
    with RawConn(proxy.port) as c:
        for code in (204, 304, 200):
            c.send(request_bytes("GET", U + "/status?code=%d" % code, [("Host", "upstream.test")]))
            r = c.read_response()
            assert r.status == code
            assert r.body == b""
        c.send(request_bytes("GET", U + "/fixed?n=3", [("Host", "upstream.test")]))
        assert c.read_response().body == pattern_bytes(3)


def test_close_delimited_response(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/close?n=70000", [("Host", "upstream.test")]))
        r = c.read_response()
        assert r.status == 200
        assert r.body == pattern_bytes(70000)


def test_close_delimited_response_with_curl(proxy):
    r = curl(proxy.url, U + "/close?n=12345")
    assert r.returncode == 0, r.stderr
    assert r.stdout == pattern_bytes(12345)


def test_http10_client_gets_unchunked_body(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/chunked?n=3000&chunks=3&trailers=0", [("Host", "upstream.test")],
                             version="HTTP/1.0"))
        raw = c.read_until_close(timeout=10)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", head
    assert b"transfer-encoding" not in head.lower(), "chunked sent to an HTTP/1.0 client"
    assert body == pattern_bytes(3000)


def test_slow_body_is_streamed(proxy):
    # 3 pieces, 1 s apart: the first must reach the client long before the last is sent
    with RawConn(proxy.port, timeout=10) as c:
        t0 = time.monotonic()
        c.send(request_bytes("GET", U + "/slow?chunks=3&size=1000&delay=1.0", [("Host", "upstream.test")]))
        c.read_head()
        while len(c.buf) < 1000:
            c._fill()
        first = time.monotonic() - t0
        while len(c.buf) < 3000:
            c._fill()
        total = time.monotonic() - t0
    assert first < 0.8 * slow_factor(), "first body bytes took %.2fs: the body is buffered, not streamed" % first
    assert total >= 1.8


def test_client_keepalive_several_requests_one_connection(proxy, upstream):
    with RawConn(proxy.port) as c:
        for i in range(5):
            c.send(request_bytes("GET", U + "/fixed?n=%d" % (10 + i), [("Host", "upstream.test")]))
            r = c.read_response()
            assert r.status == 200 and r.body == pattern_bytes(10 + i)
        assert not c.is_closed(0.3)
    assert len(upstream.wait_requests(5)) == 5


def test_upstream_connection_reuse_same_client(proxy, upstream):
    with proxy.session() as s:
        for i in range(6):
            r = s.get(U + "/fixed?n=20", timeout=10)
            assert r.status_code == 200
    got = upstream.wait_requests(6)
    assert len(got) == 6
    assert len({q.conn_id for q in got}) == 1, "each request opened a new upstream connection"


def test_upstream_connection_reuse_across_clients(proxy, upstream):
    for i in range(4):
        r = curl(proxy.url, U + "/fixed?n=20")
        assert r.returncode == 0 and r.stdout == pattern_bytes(20)
    got = upstream.wait_requests(4)
    assert len(got) == 4
    assert len({q.conn_id for q in got}) == 1, "pooled upstream connection not reused by later clients"


def test_pipelined_requests_answered_in_order(proxy, upstream):
    reqs = (
        request_bytes("GET", U + "/slow?chunks=2&size=50&delay=0.3&first_delay=0.3", [("Host", "upstream.test")])
        + request_bytes("POST", U + "/echo", [("Host", "upstream.test"), ("Content-Length", "6")], b"second")
        + request_bytes("GET", U + "/fixed?n=33", [("Host", "upstream.test")])
    )
    with RawConn(proxy.port) as c:
        c.send(reqs)
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
    assert r1.body == pattern_bytes(50) * 2
    assert r2.body == b"second"
    assert r3.body == pattern_bytes(33)
    got = upstream.wait_requests(3)
    assert [q.path for q in got] == ["/slow", "/echo", "/fixed"]


def test_hop_by_hop_request_headers_stripped(proxy, upstream):
    hdrs = [
        ("Host", "upstream.test"),
        ("Connection", "keep-alive, X-Hop-A, x-hop-b"),
        ("X-Hop-A", "a"),
        ("X-Hop-B", "b"),
        ("Proxy-Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
        ("X-End-To-End", "kept"),
    ]
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/info", hdrs))
        r = c.read_response()
        assert r.status == 200
    q = upstream.wait_requests(1)[0]
    names = {k.lower() for k, _ in q.headers}
    for h in ("x-hop-a", "x-hop-b", "proxy-connection", "keep-alive", "te", "proxy-authorization"):
        assert h not in names, "%s forwarded upstream: %r" % (h, q.headers)
    for v in q.header_all("connection"):
        assert "x-hop" not in v.lower()
    assert q.header("x-end-to-end") == "kept"
    assert b"dXNlcjpwYXNz" not in q.raw_head


def test_hop_by_hop_response_headers_stripped(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/hop", [("Host", "upstream.test")]))
        r = c.read_response()
    assert r.status == 200 and r.body == b"hop"
    names = {k.lower() for k, _ in r.headers}
    assert "x-resp-hop" not in names, r.headers
    assert "proxy-connection" not in names
    assert r.header("keep-alive") != "timeout=99"
    assert r.header("x-resp-end") == "kept"


def test_host_header_does_not_override_absolute_target(proxy, upstream):
    # the target names a denied host; a Host header naming an allowed one must not change that
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", "http://blocked.example/x", [("Host", "upstream.test")]))
        r = c.read_response()
    assert r.status in (400, 403), r
    assert upstream.snapshot()["bytes_received"] == 0


def test_interim_103_then_final_response(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/early-hints", [("Host", "upstream.test")]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"after hints"
        c.send(request_bytes("GET", U + "/fixed?n=8", [("Host", "upstream.test")]))
        assert c.read_response().body == pattern_bytes(8)


@pytest.mark.parametrize("target", ["/chunked?n=5000", "/bytes?n=70000", "/close?n=100", "/status?code=204"])
def test_head_on_any_framing_then_reuse(proxy, target):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("HEAD", U + target, [("Host", "upstream.test")]))
        r = c.read_response("HEAD")
        assert r.status in (200, 204)
        assert not c.buf, "bytes after a HEAD response head: %r" % bytes(c.buf[:100])
        if target.startswith("/close"):
            return  # the upstream closed; the proxy may close too
        c.send(request_bytes("GET", U + "/fixed?n=8", [("Host", "upstream.test")]))
        assert c.read_response().body == pattern_bytes(8)


def test_route_host_glob(sluice_factory, upstream):
    s = sluice_factory({"routes": [{"host": "*.svc.test", "to": upstream.addr}]})
    r = s.get("http://alpha.svc.test/fixed?n=4")
    assert r.status_code == 200 and r.content == pattern_bytes(4)
    assert upstream.wait_requests(1)[0].header("host").startswith("alpha.svc.test")


def test_concurrent_clients_no_crosstalk(proxy, upstream):
    errors = []

    def client(k):
        try:
            with RawConn(proxy.port, timeout=20) as c:
                for i in range(15):
                    body = (b"client-%d-req-%d-" % (k, i)) * (50 + 37 * i)
                    c.send(request_bytes("POST", U + "/echo", [("Host", "upstream.test"),
                                                                ("Content-Length", str(len(body)))], body))
                    r = c.read_response()
                    if r.status != 200 or r.body != body:
                        errors.append((k, i, r.status, r.body[:60]))
                        return
        except Exception as e:  # noqa: BLE001
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert len(upstream.wait_requests(600)) == 600


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PATCH", "PROPFIND"])
def test_other_methods_forwarded(proxy, upstream, method):
    body = b'{"k": "v"}'
    with RawConn(proxy.port) as c:
        c.send(request_bytes(method, U + "/echo", [("Host", "upstream.test"), ("Content-Length", str(len(body)))],
                             body))
        r = c.read_response()
    assert r.status == 200 and r.body == body
    q = upstream.wait_requests(1)[0]
    assert q.method == method and q.body == body


def test_scheme_and_host_are_case_insensitive(proxy, upstream):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", "HTTP://UPSTREAM.Test/fixed?n=5", [("Host", "UPSTREAM.Test")]))
        r = c.read_response()
    assert r.status == 200 and r.body == pattern_bytes(5)


def test_userinfo_in_target_never_leaks(proxy, upstream):
    secret = "s3cr3tpassw0rd"
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", "http://user:%s@upstream.test/fixed?n=5" % secret, [("Host", "upstream.test")]))
        r = c.read_response()
    assert r.status in (200, 400, 403), r
    time.sleep(0.2)
    proxy.audit(1)
    assert secret not in proxy.audit_text()
    assert secret not in proxy.stderr()
    for b in upstream.conn_bytes.values():
        assert secret.encode() not in b


def test_missing_host_header_is_400(proxy, upstream):
    # RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host
    with RawConn(proxy.port) as c:
        c.send(b"GET http://upstream.test/fixed HTTP/1.1\r\n\r\n")
        r = c.read_response()
    assert r.status == 400
    assert upstream.snapshot()["bytes_received"] == 0


def test_client_connection_close_is_honoured(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", U + "/fixed?n=5", [("Host", "upstream.test"), ("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200 and r.body == pattern_bytes(5)
        assert c.is_closed(2.0), "connection kept open after Connection: close"


def test_expect_100_continue_with_chunked_body(proxy, upstream):
    with RawConn(proxy.port, timeout=5) as c:
        c.send(request_bytes("POST", U + "/echo", [("Host", "upstream.test"), ("Transfer-Encoding", "chunked"),
                                                    ("Expect", "100-continue")]))
        head = c.read_head()
        assert head.status == 100
        c.send(b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"wikipedia"
