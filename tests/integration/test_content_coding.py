"""Content codings through the real proxy (issue 8): bodies are inspected
decoded from gzip, deflate, br and zstd in both directions, the original bytes
are forwarded unchanged, and a body that cannot be decoded (corrupt, unknown
coding, decompression bomb) is refused unless the operator lets it pass for
that host (inspect.undecodable / inspect.undecodable_pass).

Fixtures are made here: Python's zlib for gzip and deflate, the brotli and
zstd command-line tools for br and zstd."""

import hashlib
import http.client
import json
import socket
import subprocess
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from sluice_harness import rule_example as example  # noqa: E402  (the rules' own examples)

ROOT = Path(__file__).resolve().parents[2]
CODINGS = ["gzip", "deflate", "br", "zstd"]


AWS = example("aws-access-key-id").split("=")[-1].strip()
INJECTION = example("inj-ignore-previous-instructions")


def encode(coding, data):
    if coding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
        return c.compress(data) + c.flush()
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return subprocess.run(["brotli", "-c", "-q", "6"], input=data, capture_output=True,
                              check=True).stdout
    if coding == "zstd":
        return subprocess.run(["zstd", "-c", "-q", "-3"], input=data, capture_output=True,
                              check=True).stdout
    raise ValueError(coding)


def text_body(n_lines, middle=b""):
    lines = [b"entry %d: the shipment left the warehouse at %d\n" % (i, (i * 7919) % 10007)
             for i in range(n_lines)]
    return b"".join(lines[: n_lines // 2]) + middle + b"".join(lines[n_lines // 2:])


def secret_body(n_lines=200):
    return text_body(n_lines, b"\naws_access_key_id = " + AWS.encode() + b"\n")


# ---- a tiny origin for compressed responses -----------------------------

class Origin:
    """Serves registered (headers, body) pairs by path, byte for byte."""

    def __init__(self):
        self.pages = {}
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                page = origin.pages.get(self.path.split("?")[0])
                if page is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers, body = page
                self.send_response(200)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


def start(sluice_factory, upstream, origin=None, inspect=None):
    routes = [{"host": "upstream.test", "to": upstream.addr},
              {"host": "other.test", "to": upstream.addr}]
    if origin:
        routes.append({"host": "coded.test", "to": origin.addr})
    over = {"routes": routes}
    if inspect:
        over["inspect"] = inspect
    return sluice_factory(over)


def post(s, host, path, body, headers=None):
    """POST through the proxy with http.client (no content decoding)."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    h = {"Content-Length": str(len(body))}
    h.update(headers or {})
    conn.request("POST", "http://%s%s" % (host, path), body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def get(s, host, path):
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    conn.request("GET", "http://%s%s" % (host, path), headers={"Accept-Encoding": "gzip, br, zstd"})
    r = conn.getresponse()
    try:
        data = r.read()
    except http.client.IncompleteRead as e:
        data = e.partial
    conn.close()
    return r, data


def tagged():
    """A path unique to this test: the machine is shared, and a stray request
    from another test run may reach this upstream's port."""
    return "/echo?t=" + uuid.uuid4().hex


def mine(upstream, path):
    return [r for r in upstream.snapshot()["requests"] if r.target.endswith(path)]


def vm_hwm_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


# ---- outbound ------------------------------------------------------------

@pytest.mark.parametrize("coding", CODINGS)
def test_secret_in_compressed_request_body_is_refused(sluice_factory, upstream, coding):
    s = start(sluice_factory, upstream)
    body = encode(coding, secret_body())
    assert AWS.encode() not in body  # only the decoded body shows it
    path = tagged()
    r, data = post(s, "upstream.test", path, body, {"Content-Encoding": coding})
    assert r.status == 403
    verdict = json.loads(data)
    assert verdict["rule"] == "aws-access-key-id"
    assert verdict["scanner"] == "inspect:credential"
    time.sleep(0.2)
    assert mine(upstream, path) == []


@pytest.mark.parametrize("coding", CODINGS)
def test_clean_compressed_request_body_passes_byte_identical(sluice_factory, upstream, coding):
    s = start(sluice_factory, upstream)
    body = encode(coding, text_body(3000))
    path = tagged()
    r, data = post(s, "upstream.test", path, body, {"Content-Encoding": coding})
    assert r.status == 200
    assert r.getheader("X-Request-Sha256") == hashlib.sha256(body).hexdigest()
    assert data == body
    req = mine(upstream, path)[0]
    assert req.header("content-encoding") == coding


def test_stacked_codings_are_undone_in_order(sluice_factory, upstream):
    s = start(sluice_factory, upstream)
    body = encode("br", encode("gzip", secret_body()))
    r, data = post(s, "upstream.test", "/echo", body, {"Content-Encoding": "gzip, br"})
    assert r.status == 403
    assert json.loads(data)["rule"] == "aws-access-key-id"
    clean = encode("br", encode("gzip", text_body(500)))
    r, data = post(s, "upstream.test", "/echo", clean, {"Content-Encoding": "gzip, br"})
    assert r.status == 200 and data == clean


def _partial_decode(coding, data):
    """Whatever can be decoded from a (possibly cut) compressed stream."""
    if coding in ("gzip", "deflate"):
        d = zlib.decompressobj(16 + 15 if coding == "gzip" else 15)
        try:
            return d.decompress(data)
        except zlib.error:
            return b""
    tool = {"br": ["brotli", "-d", "-c"], "zstd": ["zstd", "-d", "-c", "-q"]}[coding]
    return subprocess.run(tool, input=data, capture_output=True).stdout


@pytest.mark.parametrize("coding", CODINGS)
def test_streamed_compressed_secret_never_leaves_decodable(sluice_factory, upstream, coding):
    """The body arrives in small pieces and the secret sits deep inside (for
    zstd inside a block that is still incomplete while earlier pieces are
    forwarded): nothing the upstream got decodes to the secret."""
    s = start(sluice_factory, upstream)
    plain = text_body(20000, b"\naws_access_key_id = " + AWS.encode() + b"\n")
    body = encode(coding, plain)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    path = tagged()
    sock.sendall(b"POST http://upstream.test%s HTTP/1.1\r\nHost: upstream.test\r\n"
                 b"Content-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
                 % (path.encode(), coding.encode(), len(body)))
    refused = False
    try:
        for i in range(0, len(body), 4096):
            sock.sendall(body[i: i + 4096])
            time.sleep(0.01)
    except OSError:
        refused = True
    resp = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            resp += chunk
    except OSError:
        pass
    sock.close()
    assert refused or resp.startswith(b"HTTP/1.1 403"), resp[:200]
    time.sleep(0.2)
    assert mine(upstream, path) == []
    for raw in list(upstream.conn_bytes.values()):
        if path.encode() not in raw:
            continue
        got = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""
        assert AWS.encode() not in _partial_decode(coding, got)


def test_corrupt_gzip_request_body_is_refused(sluice_factory, upstream):
    s = start(sluice_factory, upstream)
    body = bytearray(encode("gzip", text_body(400)))
    for i in range(40, 60):
        body[i] ^= 0x55
    path = tagged()
    r, data = post(s, "upstream.test", path, bytes(body), {"Content-Encoding": "gzip"})
    assert r.status == 403
    v = json.loads(data)
    assert v["rule"] == "inspection-limit" and v["scanner"] == "inspect:limit"
    assert "gzip" in v["reason"]
    time.sleep(0.2)
    assert mine(upstream, path) == []


def test_unknown_coding_is_refused(sluice_factory, upstream):
    s = start(sluice_factory, upstream)
    r, data = post(s, "upstream.test", "/echo", b"whatever", {"Content-Encoding": "compress"})
    assert r.status == 403
    v = json.loads(data)
    assert v["rule"] == "inspection-limit"
    assert "unknown content coding" in v["reason"]


def _bomb(mib):
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
    block = bytes(1 << 20)
    return b"".join(c.compress(block) for _ in range(mib)) + c.flush()


def test_gzip_bomb_is_refused_with_bounded_memory(sluice_factory, upstream):
    s = start(sluice_factory, upstream)
    bomb = _bomb(256)  # 256 MiB of zeros in about 250 KiB
    assert len(bomb) < 1 << 20
    before = vm_hwm_kib(s.proc.pid)
    path = tagged()
    r, data = post(s, "upstream.test", path, bomb, {"Content-Encoding": "gzip"})
    assert r.status == 403
    v = json.loads(data)
    assert v["rule"] == "inspection-limit"
    assert "bomb" in v["reason"]
    grown = vm_hwm_kib(s.proc.pid) - before
    assert grown < 32 * 1024, "peak memory grew by %d KiB" % grown
    time.sleep(0.2)
    assert mine(upstream, path) == []


def test_decode_limit_refuses_large_decoded_body(sluice_factory, upstream):
    s = start(sluice_factory, upstream, inspect={"decode_limit": "1MiB", "decode_ratio": 0})
    body = encode("zstd", text_body(60000))  # about 2.8 MiB decoded
    r, data = post(s, "upstream.test", "/echo", body, {"Content-Encoding": "zstd"})
    assert r.status == 403
    assert "over the inspection limit" in json.loads(data)["reason"]
    small = encode("zstd", text_body(1000))
    r, data = post(s, "upstream.test", "/echo", small, {"Content-Encoding": "zstd"})
    assert r.status == 200 and data == small


# ---- inbound -------------------------------------------------------------

def page_with_injection():
    return ("<html><body><p>Weather today: sunny.</p>%s<p>%s</p></body></html>"
            % ("<p>filler paragraph</p>" * 300, INJECTION)).encode()


@pytest.mark.parametrize("coding", CODINGS)
def test_injection_in_compressed_response_is_refused(sluice_factory, upstream, origin, coding):
    s = start(sluice_factory, upstream, origin)
    origin.pages["/bad"] = ([("Content-Type", "text/html"), ("Content-Encoding", coding)],
                           encode(coding, page_with_injection()))
    r, data = get(s, "coded.test", "/bad")
    assert r.status == 403
    v = json.loads(data)
    assert v["scanner"] == "inspect:injection"
    assert r.getheader("X-Sluice-Blocked").startswith("inj-")


@pytest.mark.parametrize("coding", CODINGS)
def test_clean_compressed_response_is_delivered_unchanged(sluice_factory, upstream, origin,
                                                          coding):
    s = start(sluice_factory, upstream, origin)
    body = encode(coding, ("<p>To install, run make and then make install.</p>" * 500).encode())
    origin.pages["/ok"] = ([("Content-Type", "text/html"), ("Content-Encoding", coding)], body)
    r, data = get(s, "coded.test", "/ok")
    assert r.status == 200
    assert r.getheader("Content-Encoding") == coding
    assert data == body


def test_corrupt_compressed_response_is_refused(sluice_factory, upstream, origin):
    s = start(sluice_factory, upstream, origin)
    origin.pages["/corrupt"] = ([("Content-Type", "text/plain"), ("Content-Encoding", "br")],
                                b"this is not brotli at all, just text" * 10)
    r, data = get(s, "coded.test", "/corrupt")
    assert r.status == 403
    v = json.loads(data)
    assert v["rule"] == "inspection-limit"
    assert "br" in v["reason"]


# ---- operator choice per host ---------------------------------------------

def test_undecodable_pass_for_listed_host_only(sluice_factory, upstream, origin):
    s = start(sluice_factory, upstream, origin,
              inspect={"undecodable_pass": ["upstream.test", "coded.test"]})
    body = bytearray(encode("gzip", text_body(400)))
    for i in range(40, 60):
        body[i] ^= 0x55
    body = bytes(body)
    r, data = post(s, "upstream.test", "/echo", body, {"Content-Encoding": "gzip"})
    assert r.status == 200 and data == body
    ev = [e for e in s.audit(1) if e.get("host") == "upstream.test"][-1]
    assert "inspection-limit" in ev.get("findings", "")
    # Another host is not on the list: still refused.
    r, data = post(s, "other.test", "/echo", body, {"Content-Encoding": "gzip"})
    assert r.status == 403 and json.loads(data)["rule"] == "inspection-limit"
    # Unknown codings pass for a listed host too.
    r, data = post(s, "upstream.test", "/echo", b"opaque", {"Content-Encoding": "compress"})
    assert r.status == 200
    # And undecodable responses.
    origin.pages["/corrupt"] = ([("Content-Type", "text/plain"), ("Content-Encoding", "zstd")],
                                b"not zstd" * 50)
    r, data = get(s, "coded.test", "/corrupt")
    assert r.status == 200 and data == b"not zstd" * 50
    # Pass is about undecodable bodies only: a decodable secret is refused.
    r, data = post(s, "upstream.test", "/echo", encode("gzip", secret_body()),
                   {"Content-Encoding": "gzip"})
    assert r.status == 403 and json.loads(data)["rule"] == "aws-access-key-id"


def test_undecodable_pass_everywhere(sluice_factory, upstream):
    s = start(sluice_factory, upstream, inspect={"undecodable": "pass"})
    r, data = post(s, "other.test", "/echo", b"opaque", {"Content-Encoding": "compress"})
    assert r.status == 200 and data == b"opaque"


@pytest.mark.parametrize("coding", ["zstd", "gzip"])
def test_plaintext_inside_a_coding_is_held_until_decoded(sluice_factory, upstream, coding):
    """Incompressible data makes zstd write raw blocks and gzip level 0 stored
    blocks: the secret then sits in the compressed bytes as plain text. zstd
    hands out a block only once it is complete, so its bytes are held back
    until then; none of them may reach the upstream before the refusal."""
    import os
    s = start(sluice_factory, upstream)
    # The secret early in the first block, which completes much later.
    plain = os.urandom(20000) + b"\naws_access_key_id = " + AWS.encode() + b"\n" + os.urandom(200000)
    if coding == "zstd":
        body = encode("zstd", plain)
    else:
        c = zlib.compressobj(0, zlib.DEFLATED, 16 + 15)
        body = c.compress(plain) + c.flush()
    assert AWS.encode() in body
    path = tagged()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    sock.sendall(b"POST http://upstream.test%s HTTP/1.1\r\nHost: upstream.test\r\n"
                 b"Content-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
                 % (path.encode(), coding.encode(), len(body)))
    try:
        for i in range(0, len(body), 2048):
            sock.sendall(body[i: i + 2048])
            time.sleep(0.002)
    except OSError:
        pass
    sock.settimeout(10)
    try:
        resp = sock.recv(65536)
    except OSError:
        resp = b""
    sock.close()
    assert resp.startswith(b"HTTP/1.1 403"), resp[:200]
    time.sleep(0.2)
    seen = [raw for raw in list(upstream.conn_bytes.values()) if path.encode() in raw]
    assert seen, "the request never started upstream: the test shows nothing"
    for raw in seen:
        assert AWS[:8].encode() not in raw
