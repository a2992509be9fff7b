"""CONNECT tunnels: a plain byte tunnel to the routed upstream, and policy on CONNECT targets."""

from helpers import RawConn, curl, request_bytes
from upstream import pattern_bytes


def open_tunnel(proxy, authority):
    c = RawConn(proxy.port, timeout=10)
    c.send(request_bytes("CONNECT", authority, [("Host", authority)]))
    r = c.read_response("CONNECT")
    return c, r


def test_connect_tunnel_to_routed_upstream(proxy, upstream):
    c, r = open_tunnel(proxy, "upstream.test:%d" % upstream.port)
    with c:
        assert r.status == 200, r
        # inside the tunnel we speak origin-form HTTP straight to the upstream
        for i in range(3):
            c.send(request_bytes("GET", "/fixed?n=%d" % (100 + i), [("Host", "upstream.test")]))
            rr = c.read_response()
            assert rr.status == 200 and rr.body == pattern_bytes(100 + i)
    got = upstream.wait_requests(3)
    assert [q.target for q in got] == ["/fixed?n=100", "/fixed?n=101", "/fixed?n=102"]
    # tunnelled bytes are not re-parsed or rewritten: all three went over one upstream connection
    assert {q.conn_id for q in got} == {got[0].conn_id}


def test_connect_tunnel_carries_binary_and_large_payload(proxy, upstream):
    body = bytes(range(256)) * 4096  # 1 MiB with every byte value
    c, r = open_tunnel(proxy, "upstream.test:%d" % upstream.port)
    with c:
        assert r.status == 200
        c.send(request_bytes("POST", "/echo", [("Host", "upstream.test"), ("Content-Length", str(len(body)))], body))
        rr = c.read_response()
        assert rr.body == body


def test_connect_with_curl_proxytunnel(proxy, upstream):
    r = curl(proxy.url, "-p", "http://upstream.test:%d/fixed?n=64" % upstream.port)
    assert r.returncode == 0, r.stderr
    assert r.stdout == pattern_bytes(64)
    assert upstream.wait_requests(1)[0].target == "/fixed?n=64"


def test_connect_to_denied_host_is_refused(proxy, upstream):
    c, r = open_tunnel(proxy, "blocked.example:443")
    with c:
        assert r.status == 403
        assert r.header("x-sluice-blocked")


def test_connect_to_private_literal_is_refused(proxy, upstream):
    c, r = open_tunnel(proxy, "127.0.0.1:%d" % upstream.port)
    with c:
        assert r.status == 403, r
        assert r.header("x-sluice-blocked")
        body = r.json()
        assert body["blocked"] is True
    assert upstream.snapshot()["connections"] == 0


def test_connect_to_private_literal_allowed_with_allow_private(sluice_factory, upstream):
    s = sluice_factory({"policy": {"allow_private": True}})
    c, r = open_tunnel(s, "127.0.0.1:%d" % upstream.port)
    with c:
        assert r.status == 200, r
        c.send(request_bytes("GET", "/fixed?n=9", [("Host", "127.0.0.1:%d" % upstream.port)]))
        assert c.read_response().body == pattern_bytes(9)


def test_connect_to_unresolvable_host_is_502(proxy):
    c, r = open_tunnel(proxy, "nonexistent.invalid:443")
    with c:
        assert r.status == 502, r
        assert r.header("x-sluice-error")
        assert r.header("x-sluice-blocked") is None


class RawTcpServer:
    """A non-HTTP TCP server: echoes bytes back; with a banner, speaks first."""

    def __init__(self, banner=b""):
        import socket
        import threading
        self.banner = banner
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.banner:
                c.sendall(self.banner)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                self.received += d
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def test_connect_tunnel_carries_non_http_bytes(sluice_factory):
    srv = RawTcpServer()
    try:
        # A plain byte tunnel: interception off (with it on, an opaque
        # protocol inside CONNECT is refused, see test_opaque_bytes_refused_when_intercepting).
        s = sluice_factory({"routes": [{"host": "raw.test", "to": "127.0.0.1:%d" % srv.port}],
                            "tls": {"intercept": False}})
        c, r = open_tunnel(s, "raw.test:%d" % srv.port)
        with c:
            assert r.status == 200, r
            payload = b"\x00\x01binary protocol\xff\xfe" * 100
            c.send(payload)
            while len(c.buf) < len(payload):
                c._fill()
            assert bytes(c.buf) == payload
    finally:
        srv.close()


def test_connect_tunnel_server_speaks_first(sluice_factory):
    srv = RawTcpServer(banner=b"SSH-2.0-OpenSSH_9.2\r\n")
    try:
        # A plain byte tunnel: interception off (with it on, an opaque
        # protocol inside CONNECT is refused, see test_opaque_bytes_refused_when_intercepting).
        s = sluice_factory({"routes": [{"host": "raw.test", "to": "127.0.0.1:%d" % srv.port}],
                            "tls": {"intercept": False}})
        c, r = open_tunnel(s, "raw.test:%d" % srv.port)
        with c:
            assert r.status == 200, r
            # the client sends nothing: the server's greeting must still come through
            c.sock.settimeout(3)
            try:
                while b"\r\n" not in c.buf:
                    c._fill()
            except TimeoutError:
                raise AssertionError("the server's greeting did not come through the tunnel within 3 s")
            assert bytes(c.buf).startswith(b"SSH-2.0-")
    finally:
        srv.close()


def test_opaque_bytes_refused_when_intercepting(sluice_factory):
    # With interception on (the default) a tunnel must carry TLS or HTTP:
    # anything else could not be inspected, so it is refused, not relayed.
    srv = RawTcpServer()
    try:
        s = sluice_factory({"routes": [{"host": "raw.test", "to": "127.0.0.1:%d" % srv.port}]})
        c, r = open_tunnel(s, "raw.test:%d" % srv.port)
        with c:
            assert r.status == 200, r
            c.send(b"\x00\x01binary-protocol\r\n\r\n")
            r2 = c.read_response()
            assert r2.status == 400
        assert bytes(srv.received) == b""
    finally:
        srv.close()
