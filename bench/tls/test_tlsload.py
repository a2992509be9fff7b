"""Tests of bench/tls/tlsload against a loopback server this file controls
(a CONNECT front plus a TLS HTTP/1.1 origin in Python threads): it counts
what it received, and reports the failures it is meant to catch.

    ninja -C build tlsload && /usr/bin/python3 -m pytest bench/tls
"""

import json
import os
import socket
import ssl
import subprocess
import threading

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TLSLOAD = os.environ.get("TLSLOAD", os.path.join(REPO, "build", "tlsload"))

pytestmark = pytest.mark.skipif(not os.access(TLSLOAD, os.X_OK),
                                reason="build/tlsload not built (ninja -C build tlsload)")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a bench.test certificate it signed, and an unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(d / f"{ca}.key"), "-out", str(d / f"{ca}.pem"),
                "-subj", f"/CN=test {ca}", "-days", "1",
                "-addext", "basicConstraints=critical,CA:TRUE")
    (d / "ext").write_text("subjectAltName=DNS:bench.test\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / "leaf.key"), "-out", str(d / "leaf.csr"), "-subj", "/CN=bench.test")
    openssl("x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
            "-extfile", str(d / "ext"), "-out", str(d / "leaf.pem"))
    return d


class Server:
    """Loopback server: optional CONNECT front (answers `connect_status`),
    then TLS, then keep-alive GETs answered with `body_len` bytes and a
    Content-Length of `claim_len` (default: the truth). Counts what it saw."""

    def __init__(self, pki, proxy, connect_status=200, body_len=100, claim_len=None):
        self.proxy, self.connect_status = proxy, connect_status
        self.body_len = body_len
        self.claim_len = body_len if claim_len is None else claim_len
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(pki / "leaf.pem"), str(pki / "leaf.key"))
        self.lock = threading.Lock()
        self.connects, self.gets, self.tls_conns = [], 0, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def read_head(self, f):
        lines = []
        while True:
            ln = f.readline()
            if not ln:
                return None
            if ln in (b"\r\n", b"\n"):
                return lines
            lines.append(ln.decode("latin-1").rstrip("\r\n"))

    def serve(self, c):
        try:
            if self.proxy:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = c.recv(1)  # byte by byte: never eat the ClientHello
                    if not chunk:
                        return
                    head += chunk
                with self.lock:
                    self.connects.append(head.split(b"\r\n")[0].decode())
                c.sendall(f"HTTP/1.1 {self.connect_status} X\r\n\r\n".encode())
                if self.connect_status != 200:
                    return
            t = self.ctx.wrap_socket(c, server_side=True)
            with self.lock:
                self.tls_conns += 1
            f = t.makefile("rb")
            body = b"x" * self.body_len
            while True:
                head = self.read_head(f)
                if head is None:
                    return
                with self.lock:
                    self.gets += 1
                t.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.claim_len}\r\n\r\n".encode()
                          + body)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def close(self):
        self.stopped = True
        self.sock.close()


def tlsload(*args, check=False):
    argv = [TLSLOAD, "--sni", "bench.test", "--path", "/f", *args]
    if check:
        argv.append("--check")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def test_direct_counts_every_response(pki):
    s = Server(pki, proxy=False, body_len=1000)
    try:
        rc, out, _ = tlsload("--direct", f"127.0.0.1:{s.port}", "--cafile", str(pki / "ca.pem"),
                             "-c", "4", "-n", "200", "--expect-len", "1000", check=True)
    finally:
        s.close()
    assert rc == 0
    assert out["error_count"] == 0
    assert out["requests"] >= 200
    assert out["body_bytes"] == out["requests"] * 1000
    # Keep-alive: 4 connections, 4 handshakes, every request on them.
    assert out["conns_opened"] == 4 and out["handshakes"] == 4
    assert s.gets >= out["requests"]
    assert 0 < out["p50_us"] <= out["p99_us"] <= out["max_us"] + 1


def test_proxy_sends_connect_and_new_conn_opens_one_per_request(pki):
    s = Server(pki, proxy=True, body_len=10)
    try:
        rc, out, _ = tlsload("--proxy", f"127.0.0.1:{s.port}", "--connect", "bench.test:8443",
                             "--cafile", str(pki / "ca.pem"), "-c", "2", "-n", "20",
                             "--new-conn", check=True)
    finally:
        s.close()
    assert rc == 0 and out["error_count"] == 0
    assert out["mode"] == "new-conn"
    assert s.connects and all(c == "CONNECT bench.test:8443 HTTP/1.1" for c in s.connects)
    # One handshake and one GET per connection; connections still in flight
    # at the end are abandoned, so the server may have seen a few more.
    assert out["requests"] >= 20
    assert out["handshakes"] >= out["requests"]
    assert s.gets <= s.tls_conns


def test_refused_connect_is_a_proxy_error(pki):
    s = Server(pki, proxy=True, connect_status=403)
    try:
        rc, out, err = tlsload("--proxy", f"127.0.0.1:{s.port}", "--cafile", str(pki / "ca.pem"),
                               "-c", "1", "-n", "1", check=True)
    finally:
        s.close()
    assert rc == 1
    assert out["errors"]["proxy"] >= 1 and out["requests"] == 0
    assert "403" in err


def test_untrusted_certificate_is_a_handshake_error(pki):
    s = Server(pki, proxy=False)
    try:
        rc, out, err = tlsload("--direct", f"127.0.0.1:{s.port}",
                               "--cafile", str(pki / "other.pem"), "-c", "1", "-n", "1",
                               check=True)
    finally:
        s.close()
    assert rc == 1
    assert out["errors"]["handshake"] >= 1 and out["requests"] == 0
    assert "verify" in err


def test_wrong_length_is_caught(pki):
    s = Server(pki, proxy=False, body_len=100)
    try:
        rc, out, _ = tlsload("--direct", f"127.0.0.1:{s.port}", "--cafile", str(pki / "ca.pem"),
                             "-c", "1", "-n", "1", "--expect-len", "99", check=True)
    finally:
        s.close()
    assert rc == 1
    assert out["errors"]["length"] == 1 and out["requests"] == 0


def test_body_longer_than_content_length_is_caught(pki):
    # 120 bytes sent for a declared 100: bytes after the body on a
    # connection that never pipelines.
    s = Server(pki, proxy=False, body_len=120, claim_len=100)
    try:
        rc, out, _ = tlsload("--direct", f"127.0.0.1:{s.port}", "--cafile", str(pki / "ca.pem"),
                             "-c", "1", "-n", "3", check=True)
    finally:
        s.close()
    assert rc == 1
    assert out["errors"]["read"] >= 1
