"""The real sluice binary as a test subject: free ports, config rendering, process control.

SLUICE_BIN overrides the binary (default: <repo>/build/sluice), so the same
suite runs against the ASan build. (Kept out of conftest.py so test modules
can import it by a name no other conftest shadows.)
"""

import copy
import errno
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from helpers import clean_env

REPO_ROOT = Path(__file__).resolve().parents[2]
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer")


def rule_example(rule_id, kind="match"):
    """The first `match` (or `no_match`) example of a rule in rules/*.yaml:
    tests take their samples from the rules, so they follow the rules."""
    import yaml
    for f in sorted((REPO_ROOT / "rules").glob("*.yaml")):
        for r in yaml.safe_load(f.read_text())["rules"]:
            if r["id"] == rule_id:
                return r["examples"][kind][0]
    raise KeyError(rule_id)


def sluice_bin():
    b = os.environ.get("SLUICE_BIN")
    if b:
        return str(Path(b).resolve())
    return str(REPO_ROOT / "build" / "sluice")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def _flow(v):
    if isinstance(v, dict):
        return "{ " + ", ".join("%s: %s" % (k, _flow(x)) for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def to_yaml(d, indent=0):
    """Render a config dict as block YAML (maps) with flow lists."""
    out = []
    pad = " " * indent
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.append("%s%s:" % (pad, k))
            out.append(to_yaml(v, indent + 2))
        else:
            out.append("%s%s: %s" % (pad, k, _flow(v)))
    return "\n".join(out)


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def base_config(tmp_path, upstream_addr, port):
    return {
        "listen": ["127.0.0.1:%d" % port],
        "workers": 1,
        "log": {"level": "debug"},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "watch": False,
        "limits": {"max_head_bytes": 32768, "max_headers": 100, "max_connections": 10000},
        "timeouts": {
            "header_read": "10s", "idle": "60s", "connect": "5s", "response_head": "30s",
            "io_idle": "60s", "upstream_idle": "30s", "drain": "10s",
        },
        "policy": {"allow": [], "deny": ["blocked.example", "*.blocked.example"], "allow_private": False},
        "routes": [{"host": "upstream.test", "to": upstream_addr}],
    }


class Sluice:
    """One running `sluice run` process."""

    def __init__(self, tmp_path, upstream, overrides=None, name="sluice"):
        self.tmp_path = tmp_path
        self.upstream = upstream
        self.overrides = overrides or {}
        self.config_path = tmp_path / ("%s.yaml" % name)
        self.stderr_path = tmp_path / ("%s.stderr" % name)
        self.stdout_path = tmp_path / ("%s.stdout" % name)
        self.audit_path = tmp_path / "audit.jsonl"
        self.proc = None
        self.port = None
        self.config = None

    # ---- lifecycle ----

    def make_config(self, port, overrides=None):
        cfg = deep_merge(base_config(self.tmp_path, self.upstream.addr if self.upstream else "127.0.0.1:9", port),
                         self.overrides if overrides is None else overrides)
        return cfg

    def write_config(self, cfg=None, text=None):
        """Replace the config file atomically (write a temp file, rename over), so a
        reload can never read a half-written file."""
        if text is None:
            text = to_yaml(cfg) + "\n"
        tmp = self.config_path.with_name(self.config_path.name + ".new")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def start(self, ready_timeout=10.0):
        last = ""
        for _ in range(6):
            self.port = free_port()
            self.config = self.make_config(self.port)
            if "audit" in self.config and "path" in self.config["audit"] and self.config["audit"]["path"] != "-":
                self.audit_path = Path(self.config["audit"]["path"])
            self.write_config(self.config)
            self.stderr_f = open(self.stderr_path, "ab")
            self.stdout_f = open(self.stdout_path, "ab")
            self.proc = subprocess.Popen([sluice_bin(), "run", "-c", str(self.config_path)],
                                         stdout=self.stdout_f, stderr=self.stderr_f, env=clean_env())
            if self._wait_ready(ready_timeout):
                return self
            last = self.stderr()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("sluice did not listen on %d within %.0fs; stderr:\n%s" % (self.port, ready_timeout, last))
            if "in use" not in last.lower() and "eaddrinuse" not in last.lower():
                break
        raise RuntimeError("sluice failed to start (rc=%s); stderr:\n%s" % (self.proc.returncode, last))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
                s.close()
                return True
            except OSError as e:
                if e.errno not in (errno.ECONNREFUSED, errno.ETIMEDOUT, None):
                    pass
            time.sleep(0.02)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15.0):
        """SIGTERM, wait; returns the exit code (kills after `timeout`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.stderr_f, self.stdout_f):
            try:
                f.close()
            except Exception:
                pass
        return self.proc.returncode

    # ---- clients ----

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def proxies(self):
        return {"http": self.url, "https": self.url}

    def session(self):
        s = requests.Session()
        s.trust_env = False
        s.proxies = dict(self.proxies)
        return s

    def get(self, url, **kw):
        with self.session() as s:
            kw.setdefault("timeout", 30)
            return s.get(url, **kw)

    def request(self, method, url, **kw):
        with self.session() as s:
            kw.setdefault("timeout", 30)
            return s.request(method, url, **kw)

    # ---- observations ----

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def audit_text(self):
        try:
            return self.audit_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def audit(self, n=None, timeout=5.0):
        """Parsed audit lines; with n, wait until at least n lines exist."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.audit_text()
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if n is None or len(lines) >= n or time.monotonic() > deadline:
                return [json.loads(ln) for ln in lines]
            time.sleep(0.05)


