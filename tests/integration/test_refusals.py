"""Refusals (403 with a machine-readable reason) and upstream failures (502/504, never
mistakable for a block)."""

import socket
import time

from sluice_harness import free_port
from helpers import Closed, RawConn, curl, request_bytes
from upstream import pattern_bytes

U = "http://upstream.test"


def assert_block(r_status, headers_get, body):
    assert r_status == 403
    assert body["blocked"] is True
    for k in ("rule", "scanner", "reason", "request_id"):
        assert k in body, "missing %r in %r" % (k, body)
    assert body["rule"], body
    assert body["request_id"], body
    assert headers_get("X-Sluice-Blocked") == body["rule"]
    assert headers_get("X-Sluice-Error") is None


def assert_upstream_error(status, headers_get, body, expect_status):
    assert status == expect_status, (status, body)
    assert body["error"] == "upstream", body
    assert body.get("reason"), body
    assert body.get("request_id"), body
    assert "blocked" not in body or body["blocked"] is not True
    assert headers_get("X-Sluice-Error"), "no X-Sluice-Error header"
    assert headers_get("X-Sluice-Blocked") is None, "an upstream failure must not look like a block"


def test_denied_host_gets_403_json(proxy, upstream):
    r = proxy.get("http://blocked.example/anything")
    assert_block(r.status_code, r.headers.get, r.json())
    assert r.headers.get("Content-Type", "").startswith("application/json")


def test_denied_host_glob_subdomain(proxy):
    r = proxy.get("http://api.blocked.example/x")
    assert_block(r.status_code, r.headers.get, r.json())


def test_denied_host_case_and_trailing_dot(proxy):
    for host in ("BLOCKED.Example", "blocked.example."):
        r = proxy.get("http://%s/x" % host)
        assert r.status_code == 403, host
        assert r.headers.get("X-Sluice-Blocked"), host


def test_denied_host_with_curl(proxy):
    r = curl(proxy.url, "-i", "http://blocked.example/")
    assert r.returncode == 0, r.stderr
    head = r.stdout.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 403")
    assert b"x-sluice-blocked:" in head


def test_private_literal_refused_without_allow_private(proxy, upstream):
    r = proxy.get("http://127.0.0.1:%d/fixed" % upstream.port)
    assert_block(r.status_code, r.headers.get, r.json())
    assert upstream.snapshot()["connections"] == 0


def test_private_literal_variants_refused(proxy, upstream):
    p = upstream.port
    for target in ("http://localhost:%d/" % p, "http://[::1]:%d/" % p, "http://127.1:%d/" % p,
                   "http://2130706433:%d/" % p, "http://0x7f000001:%d/" % p, "http://10.1.2.3/",
                   "http://169.254.169.254/latest/meta-data/"):
        r = proxy.get(target, timeout=10)
        assert r.status_code in (400, 403), "%s -> %d" % (target, r.status_code)
    assert upstream.snapshot()["connections"] == 0


def test_private_literal_allowed_with_allow_private(sluice_factory, upstream):
    s = sluice_factory({"policy": {"allow_private": True}})
    r = s.get("http://127.0.0.1:%d/fixed?n=11" % upstream.port)
    assert r.status_code == 200
    assert r.content == pattern_bytes(11)


def test_allow_list_is_deny_by_default(sluice_factory, upstream):
    s = sluice_factory({"policy": {"allow": ["upstream.test"]}})
    assert s.get(U + "/fixed?n=1").status_code == 200
    r = s.get("http://other.example/")
    assert r.status_code == 403
    assert r.headers.get("X-Sluice-Blocked")


def test_unresolvable_host_is_502(proxy):
    r = proxy.get("http://nonexistent.invalid/x")
    assert_upstream_error(r.status_code, r.headers.get, r.json(), 502)


def test_route_to_closed_port_is_502(sluice_factory):
    port = free_port()
    s = sluice_factory({"routes": [{"host": "dead.test", "to": "127.0.0.1:%d" % port}]})
    r = s.get("http://dead.test/x")
    assert_upstream_error(r.status_code, r.headers.get, r.json(), 502)


def test_upstream_never_answers_is_504(sluice_factory):
    s = sluice_factory({"timeouts": {"response_head": "1s"}})
    t0 = time.monotonic()
    r = s.get(U + "/hang", timeout=15)
    assert_upstream_error(r.status_code, r.headers.get, r.json(), 504)
    assert time.monotonic() - t0 < 5


def test_connect_timeout_is_504(sluice_factory):
    # a listener whose accept queue is full never completes the handshake
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.2)
        s = sluice_factory({"timeouts": {"connect": "1s"},
                            "routes": [{"host": "full.test", "to": "127.0.0.1:%d" % port}]})
        t0 = time.monotonic()
        r = s.get("http://full.test/x", timeout=15)
        assert r.status_code == 504, (r.status_code, r.text)
        assert r.headers.get("X-Sluice-Error")
        assert r.headers.get("X-Sluice-Blocked") is None
        assert time.monotonic() - t0 < 6
    finally:
        for f in fillers:
            f.close()
        lst.close()


def test_malformed_upstream_response_is_502(proxy):
    for kind in ("garbage", "badstatus", "cl_te", "dup_cl", "nul"):
        r = proxy.get(U + "/malformed?kind=%s" % kind)
        assert_upstream_error(r.status_code, r.headers.get, r.json(), 502)


def test_malformed_chunked_upstream_body_not_passed_as_success(proxy):
    # the head was fine, so the proxy may already have sent 200; then it must abort the
    # client connection rather than end the body as if it were complete.
    with RawConn(proxy.port, timeout=5) as c:
        c.send(request_bytes("GET", U + "/malformed?kind=bad_chunk", [("Host", "upstream.test")]))
        try:
            r = c.read_response()
        except Exception:
            return  # aborted: correct
        assert r.status == 502, r


def test_upstream_error_does_not_kill_keepalive(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", "http://nonexistent.invalid/", [("Host", "nonexistent.invalid")]))
        r = c.read_response()
        assert r.status == 502
        c.send(request_bytes("GET", U + "/fixed?n=4", [("Host", "upstream.test")]))
        assert c.read_response().body == pattern_bytes(4)


def test_block_does_not_kill_keepalive(proxy):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("GET", "http://blocked.example/", [("Host", "blocked.example")]))
        r = c.read_response()
        assert r.status == 403
        c.send(request_bytes("GET", U + "/fixed?n=4", [("Host", "upstream.test")]))
        assert c.read_response().body == pattern_bytes(4)


def test_blocked_request_body_is_not_parsed_as_a_request(proxy, upstream):
    smuggled = b"GET http://upstream.test/smuggled HTTP/1.1\r\nHost: upstream.test\r\n\r\n"
    body = smuggled * 3 + b"x" * 50000
    with RawConn(proxy.port) as c:
        c.send(request_bytes("POST", "http://blocked.example/up", [("Host", "blocked.example"),
                                                                    ("Content-Length", str(len(body)))], body))
        r = c.read_response()
        assert r.status == 403
        try:
            c.send(request_bytes("GET", U + "/fixed?n=3", [("Host", "upstream.test")]))
            r2 = c.read_response()
            assert r2.status == 200 and r2.body == pattern_bytes(3)
        except (Closed, OSError):
            pass  # the proxy may close after a refusal instead
    time.sleep(0.2)
    for b in upstream.conn_bytes.values():
        assert b"/smuggled" not in b


def test_blocked_chunked_body_is_not_parsed_as_a_request(proxy, upstream):
    smuggled = b"GET http://upstream.test/smuggled HTTP/1.1\r\nHost: upstream.test\r\n\r\n"
    body = b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n"
    with RawConn(proxy.port) as c:
        c.send(request_bytes("POST", "http://blocked.example/up", [("Host", "blocked.example"),
                                                                    ("Transfer-Encoding", "chunked")], body))
        r = c.read_response()
        assert r.status == 403
        try:
            c.send(request_bytes("GET", U + "/fixed?n=3", [("Host", "upstream.test")]))
            r2 = c.read_response()
            assert r2.status == 200 and r2.body == pattern_bytes(3)
        except (Closed, OSError):
            pass  # the proxy may close after a refusal instead
    time.sleep(0.2)
    for b in upstream.conn_bytes.values():
        assert b"/smuggled" not in b
