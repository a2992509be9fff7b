"""Harness for the policy / admin API suite: the real sluice binary with an
inline config on ephemeral ports, a recording local upstream, an admin client.

Module names carry a `policy_` prefix so that no other conftest in
tests/integration can shadow them. SLUICE_BIN overrides the binary."""

import base64
import copy
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sluice_bin():
    b = os.environ.get("SLUICE_BIN")
    return str(Path(b).resolve()) if b else str(REPO_ROOT / "build" / "sluice")


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def prune_none(d):
    """Drop mapping keys whose value is None (how an override removes a key)."""
    if isinstance(d, dict):
        return {k: prune_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [prune_none(v) for v in d]
    return d


# ---- upstream ---------------------------------------------------------------

class Upstream:
    """Threaded HTTP/1.1 origin on 127.0.0.1 recording every request.
    GET /slow/<ms> answers after <ms> milliseconds."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        up = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with up.lock:
                    up.requests.append({"method": self.command, "path": self.path,
                                        "host": self.headers.get("Host"),
                                        "headers": dict(self.headers), "body": body})
                if self.path.startswith("/slow/"):
                    time.sleep(int(self.path.split("/")[2]) / 1000.0)
                out = json.dumps({"method": self.command, "path": self.path,
                                  "host": self.headers.get("Host")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class AcceptRecorder:
    """A listener that records accepted connections (and closes them): proof
    that nothing connected to an address."""

    def __init__(self, host="127.0.0.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepts += 1
            c.close()

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


# ---- clients ----------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def blocked(self):
        return self.headers.get("x-sluice-blocked")

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.body[:300])


def proxy_request(port, method, url, body=None, headers=None, source=None, auth=None,
                  timeout=20, host="127.0.0.1"):
    """One request through the proxy (absolute-form target) with http.client;
    `source` binds the client socket to that address; `auth` = (user, password)."""
    h = dict(headers or {})
    if auth is not None:
        h["Proxy-Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, url, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def admin_request(port, method, path, body=None, token=ADMIN_TOKEN, headers=None, raw_body=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if data is not None:
        h["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        out = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, out)
    finally:
        conn.close()


# ---- sluice -----------------------------------------------------------------

class Sluice:
    """One `sluice run` process. The config is base_config() deep-merged with
    `overrides` (a dict, or a function of this object returning one, for
    configs that need the ports)."""

    def __init__(self, tmp_path, upstream, overrides=None, name="sluice", env=None, admin=True,
                 n_listen=2, netns=None):
        self.tmp = tmp_path
        self.up = upstream
        self.overrides = overrides
        self.name = name
        self.env = dict(env or {})
        self.admin = admin
        self.n_listen = n_listen
        self.netns = netns
        self.config_path = tmp_path / ("%s.json" % name)
        self.stderr_path = tmp_path / ("%s.stderr" % name)
        self.audit_path = tmp_path / ("%s-audit.jsonl" % name)
        self.proc = None

    def base_config(self):
        cfg = {
            "listen": ["127.0.0.1:%d" % p for p in self.ports],
            "workers": 1,
            "log": {"level": "debug"},
            "audit": {"path": str(self.audit_path)},
            "watch": False,
            "timeouts": {"connect": "2s", "response_head": "20s", "drain": "5s"},
            "tls": {"intercept": False},
            "routes": [{"host": "*.test", "to": self.up.addr if self.up else "127.0.0.1:9"}],
        }
        if self.admin:
            cfg["admin"] = {"listen": "127.0.0.1:%d" % self.admin_port,
                            "token_env": "SLUICE_ADMIN_TOKEN"}
        return cfg

    def make_config(self):
        over = self.overrides(self) if callable(self.overrides) else (self.overrides or {})
        return prune_none(deep_merge(self.base_config(), over))

    def command(self):
        cmd = [sluice_bin(), "run", "-c", str(self.config_path)]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return cmd

    def start(self, expect_fail=False, timeout=10):
        for _ in range(5):
            self.ports = [free_port() for _ in range(self.n_listen)]
            self.port = self.ports[0]
            self.admin_port = free_port()
            self.config = self.make_config()
            self.config_path.write_text(json.dumps(self.config, indent=1) + "\n")
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN}
            env.update(self.env)
            env = {k: v for k, v in env.items() if v is not None}
            self.stderr_f = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                         stderr=self.stderr_f, env=env)
            if expect_fail:
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                self.stderr_f.close()
                return self.proc.returncode
            if self._wait_ready(timeout):
                return self
            err = self.stderr()
            self.stop()
            if "in use" not in err.lower():
                raise RuntimeError("sluice did not start; stderr:\n%s" % err[-3000:])
        raise RuntimeError("sluice did not start (ports in use)")

    def _ready_probe(self):
        if self.netns:
            r = subprocess.run(["ip", "netns", "exec", self.netns, "sh", "-c",
                                "exec 3<>/dev/tcp/127.0.0.1/%d" % self.port],
                               capture_output=True)
            if r.returncode != 0:
                # /bin/sh may lack /dev/tcp: ask the log instead
                return "ready:" in self.stderr()
            return True
        ok = True
        ports = [self.port] + ([self.admin_port] if self.admin and
                               str(self.config.get("admin", {}).get("listen", "")).startswith("127.") else [])
        for p in ports:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.5).close()
            except OSError:
                ok = False
        return ok

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._ready_probe():
                return True
            time.sleep(0.03)
        return False

    def stop(self, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self.stderr_f.close()
        except Exception:
            pass
        return self.proc.returncode

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- clients ----

    def req(self, method, url, **kw):
        port = kw.pop("port", self.port)
        return proxy_request(port, method, url, **kw)

    def get(self, url, **kw):
        return self.req("GET", url, **kw)

    def admin_call(self, method, path, body=None, **kw):
        return admin_request(self.admin_port, method, path, body, **kw)

    def audit(self, event=None, wait_for=None, timeout=5.0):
        """Parsed audit lines (optionally only {"event": event}); with
        wait_for(lines) -> bool, poll until it holds or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.audit_path.read_text(errors="replace")
            except FileNotFoundError:
                text = ""
            lines = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
            if event is not None:
                lines = [ln for ln in lines if ln.get("event") == event]
            if wait_for is None or wait_for(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def cli(self, *args, env=None, token=ADMIN_TOKEN):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLUICE_ADMIN_TOKEN": token, "USER": "tester"}
        e.update(env or {})
        return subprocess.run([sluice_bin(), "admin", "--url", "http://127.0.0.1:%d" % self.admin_port]
                              + list(args), capture_output=True, text=True, env=e, timeout=30)
