"""Helpers for the TLS interception integration tests (issue 5).

Everything here runs on 127.0.0.1 only: a throw-away PKI made with the
`openssl` command line, TLS and plain HTTP upstream servers built on the
standard library, and a launcher for the sluice binary under test.
"""

import hashlib
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse

OPENSSL = "openssl"


# --------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------


def run(cmd, **kw):
    """Run a command, raise with its output if it fails."""
    kw.setdefault("timeout", 60)
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_input(cmd, text_in, timeout=20):
    """Run a command with `text_in` on stdin; return its stdout."""
    p = subprocess.run(cmd, input=text_in, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({p.returncode}):\n{p.stderr}")
    return p.stdout


def _leaf_ext(path, names):
    san = ",".join(f"DNS:{n}" for n in names)
    with open(path, "w") as f:
        f.write(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName={san}\n"
        )


def make_ca(d, name, cn):
    """A self-signed EC P-256 CA; returns (cert_path, key_path)."""
    cert, key = os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")
    run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", f"/CN={cn}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-addext", "subjectKeyIdentifier=hash"])
    os.chmod(key, 0o600)
    return cert, key


def make_csr(d, name, cn):
    key, csr = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.csr")
    run([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"])
    return key, csr


def make_leaf(d, name, names, ca_cert, ca_key):
    """A leaf for `names` signed by the CA, valid now; returns (cert, key)."""
    key, csr = make_csr(d, name, names[0])
    ext = os.path.join(d, f"{name}.ext")
    _leaf_ext(ext, names)
    cert = os.path.join(d, f"{name}.pem")
    run([OPENSSL, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", cert])
    return cert, key


def make_expired_leaf(d, name, names, ca_cert, ca_key):
    """A leaf valid only on 2020-01-01, signed with `openssl ca` (OpenSSL 3.0's
    `x509` cannot set explicit dates)."""
    key, csr = make_csr(d, name, names[0])
    ext = os.path.join(d, f"{name}.ext")
    _leaf_ext(ext, names)
    cadir = os.path.join(d, f"{name}-cadb")
    os.makedirs(cadir)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(cadir, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(
            "[ ca ]\ndefault_ca = test\n"
            "[ test ]\n"
            f"dir = {cadir}\n"
            "database = $dir/index.txt\nserial = $dir/serial\nnew_certs_dir = $dir\n"
            "default_md = sha256\npolicy = anything\nunique_subject = no\n"
            "copy_extensions = none\n"
            "[ anything ]\ncommonName = supplied\n"
        )
    cert = os.path.join(d, f"{name}.pem")
    run([OPENSSL, "ca", "-batch", "-config", cnf, "-cert", ca_cert, "-keyfile", ca_key,
         "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
         "-extfile", ext, "-notext", "-in", csr, "-out", cert])
    return cert, key


def make_self_signed(d, name, names):
    cert, key = os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")
    san = ",".join(f"DNS:{n}" for n in names)
    run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", f"/CN={names[0]}",
         "-addext", f"subjectAltName={san}"])
    return cert, key


class Pki:
    """The per-session test PKI (all files under `dir`)."""

    def __init__(self, d):
        self.dir = d
        self.ca, self.ca_key = make_ca(d, "upstream-ca", "sluice-test upstream CA")
        self.secure = make_leaf(d, "secure", ["secure.test"], self.ca, self.ca_key)
        # Presented by the server sluice reaches as wrong-name.test.
        self.wrong_name = make_leaf(d, "wrongname", ["other.test"], self.ca, self.ca_key)
        self.expired = make_expired_leaf(d, "expired", ["expired.test"], self.ca, self.ca_key)
        self.untrusted = make_self_signed(d, "untrusted", ["untrusted.test"])
        self.pinned = make_leaf(d, "pinned", ["pinned.test"], self.ca, self.ca_key)


def x509_text(pem_or_path):
    """`openssl x509 -text` of a PEM string or file."""
    if os.path.exists(pem_or_path):
        return run([OPENSSL, "x509", "-noout", "-text", "-in", pem_or_path]).stdout
    return subprocess.run([OPENSSL, "x509", "-noout", "-text"], input=pem_or_path,
                          capture_output=True, text=True, timeout=20, check=True).stdout


def x509_field(pem, opt):
    """One `openssl x509 -noout -<opt>` field (serial, issuer, subject...)."""
    p = subprocess.run([OPENSSL, "x509", "-noout", f"-{opt}", "-nameopt", "RFC2253"],
                       input=pem, capture_output=True, text=True, timeout=20, check=True)
    return p.stdout.strip().split("=", 1)[1]


PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


# --------------------------------------------------------------------------
# Upstream servers
# --------------------------------------------------------------------------


def big_body(n):
    """Deterministic n-byte body for /big."""
    block = hashlib.sha256(b"sluice").digest() * 128  # 4 KiB
    return (block * (n // len(block) + 1))[:n]


CHUNKS = [b"first chunk\n", b"x" * 5000 + b"\n", b"", b"last chunk\n"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sluice-test-upstream"

    def log_message(self, *a):  # quiet
        pass

    def _record(self, body):
        self.server.requests.append({
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "peer_port": self.client_address[1],
            "body_len": len(body),
        })

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        self.do_GET()

    def do_GET(self):
        body = self._read_body()
        self._record(body)
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/hello" or url.path.startswith("/hello/"):
            self._send(200, f"hello from {self.server.name}\n".encode())
        elif url.path == "/echo":
            doc = {
                "server": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "peer_port": self.client_address[1],
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            self._send(200, json.dumps(doc).encode(), "application/json")
        elif url.path == "/big":
            self._send(200, big_body(int(q.get("n", ["1048576"])[0])),
                       "application/octet-stream")
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for c in CHUNKS:
                if c:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif self.server.static_root and url.path.startswith("/repo.git/"):
            rel = os.path.normpath(urllib.parse.unquote(url.path[len("/repo.git/"):]))
            full = os.path.join(self.server.static_root, rel)
            if rel.startswith("..") or not os.path.isfile(full):
                self._send(404, b"not found\n")
            else:
                with open(full, "rb") as f:
                    self._send(200, f.read(), "application/octet-stream")
        else:
            self._send(404, b"not found\n")


class Upstream(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTP/1.1 server on 127.0.0.1:<ephemeral>; TLS when given a cert.
    The TLS handshake runs in the per-connection thread, so a client that
    stalls or fails its handshake does not block the others."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name, cert=None, key=None, static_root=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.name = name
        self.static_root = static_root
        self.requests = []
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def finish_request(self, request, client_address):
        if self.ctx is not None:
            request.settimeout(10)
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients that go away are part of the tests

    def stop(self):
        self.shutdown()
        self.server_close()


# --------------------------------------------------------------------------
# sluice
# --------------------------------------------------------------------------


def _yaml_scalar(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_scalar(e)}" for k, e in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_scalar(e) for e in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a double-quoted YAML string


def to_yaml(doc, indent=0):
    """Minimal YAML emitter for config dicts: plain keys (the config parser
    rejects quoted keys), quoted string values, flow-style scalar lists."""
    pad = " " * indent
    out = []
    for k, v in doc.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k}:")
            out.append(to_yaml(v, indent + 2))
        elif isinstance(v, list) and any(isinstance(e, dict) for e in v):
            out.append(f"{pad}{k}:")
            for e in v:
                items = ", ".join(f"{ek}: {_yaml_scalar(ev)}" for ek, ev in e.items())
                out.append(f"{pad}  - {{ {items} }}")
        elif isinstance(v, list):
            out.append(f"{pad}{k}: [{', '.join(_yaml_scalar(e) for e in v)}]")
        else:
            out.append(f"{pad}{k}: {_yaml_scalar(v)}")
    return "\n".join(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sluice:
    """One sluice process started from a config dict. `listen`, `workers`,
    `log`, `audit` and `tls.ca_out` are filled in unless given."""

    def __init__(self, binary, workdir, config):
        self.binary = binary
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.audit_path = os.path.join(workdir, "audit.jsonl")
        self.log_path = os.path.join(workdir, "sluice.log")
        self.ca_path = os.path.join(workdir, "sluice-ca.pem")
        cfg = {"listen": [f"127.0.0.1:{self.port}"], "workers": 1,
               "log": {"level": "debug"}, "audit": {"path": self.audit_path}}
        cfg.update(config)
        tls = dict(cfg.get("tls", {}))
        if tls.get("intercept", True) and "ca_out" not in tls:
            tls["ca_out"] = self.ca_path
        cfg["tls"] = tls
        self.ca_path = tls.get("ca_out")
        self.config_path = os.path.join(workdir, "sluice.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        self.proc = None

    @property
    def proxy(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=10):
        """Start and wait until the port accepts and the CA file exists.
        Raises RuntimeError (with the log) if sluice exits instead."""
        if self.ca_path and os.path.exists(self.ca_path):
            os.unlink(self.ca_path)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "run", "-c", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited with {self.proc.returncode}:\n"
                                   + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                if not self.ca_path or os.path.exists(self.ca_path):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("sluice did not start listening:\n" + self.log_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self.log.close()

    def sanitizer_report(self):
        """ASan/UBSan/LSan findings in the log (a sanitizer build of sluice
        can be tested with SLUICE_BIN), or ""."""
        text = self.log_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return ""

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def audit(self):
        """The audit events written so far (parsed JSON lines)."""
        try:
            with open(self.audit_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


def base_config(pki, upstreams, route_ca=True):
    """The routes and policy shared by the session sluice and most others."""
    def route(host, up, tls=True):
        r = {"host": host, "to": f"127.0.0.1:{upstreams[up].port}"}
        if tls and route_ca:
            r["ca_file"] = pki.ca
        return r

    return {
        "routes": [
            route("secure.test", "secure"),
            route("wrong-name.test", "wrongname"),
            route("expired.test", "expired"),
            route("untrusted.test", "untrusted"),
            route("pinned.test", "pinned"),
            route("pinned-denied.test", "pinned"),
            route("denied.test", "secure"),
            route("plain.test", "plain", tls=False),
            route("*.odd.test", "secure"),  # any name: for host-check tests
        ],
        "policy": {"allow_private": False, "deny": ["denied.test", "pinned-denied.test"]},
        "tls": {"intercept": True, "passthrough": ["pinned.test", "pinned-denied.test"]},
    }


# --------------------------------------------------------------------------
# Raw clients
# --------------------------------------------------------------------------


def connect_tunnel(proxy_port, host, port, timeout=10):
    """Open a CONNECT tunnel; returns (socket, status line, head bytes)."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    return s, status, head


def read_response(f):
    """Read one HTTP/1.1 response from a file object; returns
    (status, headers dict with lower-case names, body bytes)."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed before a response")
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, v = h.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    return status, headers, body


def client_context(cafile=None):
    """A client TLS context verifying against `cafile` (host names checked),
    or verifying nothing when it is None."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_handshake(proxy_port, host, cafile=None, servername=None, versions=None, alpn=None):
    """CONNECT (HTTP/1.1) then a TLS handshake with Python's ssl module.
    Returns {"pem": the server's leaf, "version": "TLSv1.3", "alpn": ...}.
    Verifies against `cafile` when given (check_hostname on), else not."""
    sock, status, head = connect_tunnel(proxy_port, host, 443)
    if " 200 " not in status:
        sock.close()
        raise AssertionError(f"CONNECT {host}: {head!r}")
    ctx = client_context(cafile)
    if versions:
        ctx.minimum_version, ctx.maximum_version = versions
    if alpn:
        ctx.set_alpn_protocols(alpn)
    try:
        t = ctx.wrap_socket(sock, server_hostname=servername or host)
    except BaseException:
        sock.close()
        raise
    try:
        return {"pem": ssl.DER_cert_to_PEM_cert(t.getpeercert(binary_form=True)),
                "version": t.version(), "alpn": t.selected_alpn_protocol()}
    finally:
        t.close()
