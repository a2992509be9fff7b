#!/usr/bin/env python3
"""Honest agent-egress-bench runner for sluice: drives the REAL proxy.

For every corpus case whose transport sluice carries today (fetch_proxy,
http_proxy) the runner sends exactly the request the case describes through
a running `sluice run` and observes what happened:

  block  sluice refused with its own signal (403/407/429 + X-Sluice-Blocked,
         or a refused CONNECT that the audit trail attributes to a rule), and
         for response_content the agent did not get the case body unchanged.
  allow  the local upstream really received the request (and for
         response_content the agent got the case body byte for byte).
  error  anything else: 502/504, 400, timeouts, resets, crashes.

WebSocket, MCP and A2A cases are `not_applicable` (sluice has no such
inspection yet), never a pass. See tests/aeb/README.md.

Nothing in the request is added or changed to help the runner correlate:
cases run one at a time, and the upstream attributes whatever arrives to the
case in flight.
"""

import argparse
import datetime
import glob
import http.server
import ipaddress
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

urllib3.disable_warnings()

REPO = Path(__file__).resolve().parents[2]
SUPPORTED = ("fetch_proxy", "http_proxy")
BLOCK_STATUSES = (403, 407, 429)
UPSTREAM_MARK = "X-Aeb-Upstream"
DEFAULT_BODY = b"upstream ok\n"
# Text after this line in the score document is hand-written analysis; a
# rerun keeps it.
ANALYSIS_MARK = "<!-- analysis below is written by hand and kept across reruns -->"


# ---------------------------------------------------------------- corpus


def load_cases(corpus):
    cdir = Path(corpus) / "cases"
    if not cdir.is_dir():
        sys.exit("aeb: corpus not found: %s has no cases/ directory.\n"
                 "     Expected the agent-egress-bench snapshot at <repo>/../shared/aeb;\n"
                 "     pass --corpus DIR to point elsewhere." % corpus)
    cases = []
    for f in sorted(glob.glob(str(cdir / "*" / "*.json"))):
        with open(f, encoding="utf-8") as fh:
            d = json.load(fh)
        d["_file"] = f
        cases.append(d)
    if not cases:
        sys.exit("aeb: no case files under %s" % cdir)
    return cases


def is_ip_literal(host):
    """True for anything a resolver would take as an address, including the
    legacy inet_aton forms (hex, octal, a single 32-bit number)."""
    h = host.strip("[]")
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(h)
        return True
    except OSError:
        return False


def wire_url(case):
    """The URL as the agent puts it on the wire for the case's transport.

    fetch_proxy is a plain HTTP request through the proxy: the proxy sees the
    whole URL. sluice accepts absolute-form for http:// only, so an https://
    URL in a fetch_proxy case is sent as http:// with the same host, path and
    query (the route sends it to the local upstream either way).
    http_proxy cases are sent as written (https:// goes through CONNECT)."""
    url = case["payload"]["url"]
    if case["transport"] == "fetch_proxy":
        p = urlsplit(url)
        if p.scheme == "https":
            return urlunsplit(("http",) + tuple(p[1:])), "https:// sent as plain http:// (fetch_proxy)"
    return url, ""


# ---------------------------------------------------------------- certificates


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_upstream_pki(tmp, hosts):
    """A throwaway CA and one leaf for every routed host (openssl CLI)."""
    ca_key, ca_crt = tmp / "upca.key", tmp / "upca.pem"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
         "-out", str(ca_crt), "-days", "2", "-subj", "/CN=aeb upstream test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    key, csr, crt = tmp / "up.key", tmp / "up.csr", tmp / "up.pem"
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=aeb-upstream"])
    ext = tmp / "up.ext"
    san = ",".join("DNS:%s" % h for h in sorted(hosts)) or "DNS:aeb.invalid"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)])
    return ca_crt, crt, key


# ---------------------------------------------------------------- upstream


class Upstream:
    """One port, plain HTTP and TLS (the first byte decides), threaded.

    It records every request it parses and answers 200 with a small body, or
    with the response_body of the case in flight."""

    def __init__(self, cert, key):
        self.lock = threading.Lock()
        self.seen = []
        self.body = DEFAULT_BODY
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cert), str(key))
        up = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 20

            def setup(self):
                self.tls = False
                try:
                    self.request.settimeout(20)
                    first = self.request.recv(1, socket.MSG_PEEK)
                    if first[:1] == b"\x16":
                        self.request = up.ctx.wrap_socket(self.request, server_side=True)
                        self.tls = True
                except (OSError, ssl.SSLError):
                    pass
                super().setup()

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = self._read_chunked()
                with up.lock:
                    up.seen.append({"method": self.command, "path": self.path, "tls": self.tls,
                                    "headers": dict(self.headers.items()), "body": body})
                    out = up.body
                self.send_response(200)
                self.send_header("Content-Type", content_type_for(out))
                self.send_header("Content-Length", str(len(out)))
                self.send_header(UPSTREAM_MARK, "1")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            def _read_chunked(self):
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # A client (sluice) closing early is an outcome, not a runner fault.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def begin(self, body):
        with self.lock:
            self.seen = []
            self.body = body if body is not None else DEFAULT_BODY

    def arrivals(self):
        with self.lock:
            return list(self.seen)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def content_type_for(body):
    s = body.lstrip()[:16]
    if s.startswith(b"{") or s.startswith(b"["):
        return "application/json"
    if s.startswith(b"<?xml"):
        return "application/xml"
    if s.startswith(b"<"):
        return "text/html; charset=utf-8"
    return "text/plain; charset=utf-8"


# ---------------------------------------------------------------- sluice


def yaml_str(s):
    return json.dumps(str(s))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Sluice:
    def __init__(self, binary, tmp, routes, upstream_ca):
        self.binary = binary
        self.tmp = tmp
        self.routes = routes
        self.upstream_ca = upstream_ca
        self.audit = tmp / "audit.jsonl"
        self.ca_out = tmp / "sluice-ca.pem"
        self.proc = None

    def config_text(self, port):
        lines = [
            "listen: [%s]" % yaml_str("127.0.0.1:%d" % port),
            "workers: 1",
            "log: { level: info }",
            "audit: { path: %s }" % yaml_str(self.audit),
            "watch: false",
            "timeouts: { connect: 5s, response_head: 15s, io_idle: 20s }",
            "policy:",
            "  deny: [\"exfil-collector.example.net\"]",
            "tls:",
            "  ca_out: %s" % yaml_str(self.ca_out),
            "routes:",
        ]
        for host, to in self.routes:
            lines.append("  - { host: %s, to: %s, ca_file: %s }" % (yaml_str(host), yaml_str(to),
                                                                 yaml_str(self.upstream_ca)))
        if not self.routes:
            lines[-1] = "routes: []"
        return "\n".join(lines) + "\n"

    def start(self, ready_timeout):
        self.port = free_port()
        cfg = self.tmp / "sluice.yaml"
        cfg.write_text(self.config_text(self.port))
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        self.stderr_path = self.tmp / "sluice.stderr"
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "run", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env=env, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice exited (rc=%s):\n%s" % (self.proc.returncode, self.stderr_text()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                if self.ca_out.exists():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("sluice did not listen within %ss:\n%s" % (ready_timeout, self.stderr_text()))

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def audit_size(self):
        try:
            return self.audit.stat().st_size
        except OSError:
            return 0

    def audit_since(self, offset, host, wait=1.5):
        """Audit events for `host` written after `offset` (lines are batched
        per loop turn, so wait a little for them; filtering by host keeps a
        late line of the previous case out)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                with open(self.audit, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                data = b""
            events = []
            for line in data.splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if str(e.get("host", "")).lower().strip("[]") == host:
                    events.append(e)
            if events or time.monotonic() >= deadline:
                return events
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


# ---------------------------------------------------------------- one case


def refusal_evidence(resp):
    rule = resp.headers.get("X-Sluice-Blocked", "")
    scanner = ""
    try:
        j = resp.json()
        rule = j.get("rule") or rule
        scanner = j.get("scanner") or ""
    except ValueError:
        pass
    return rule, scanner


def audit_block(events):
    for e in events:
        if e.get("verdict") == "block":
            return e
    return None


def findings_note(events):
    f = []
    for e in events:
        f += e.get("findings") or []
    return "; findings (not blocking): %s" % ",".join(sorted(set(f))) if f else ""


def run_case(case, sl, up, timeout):
    """Returns (actual_verdict, evidence, notes)."""
    p = case["payload"]
    url, note = wire_url(case)
    is_resp = case["input_type"] == "response_content"
    method = "GET" if is_resp else p.get("method", "GET")
    headers = dict(p.get("headers") or {})
    body = None
    if case["input_type"] == "request_body":
        body = p.get("body", "").encode("utf-8")
        if p.get("content_type"):
            headers["Content-Type"] = p["content_type"]
    want = p["response_body"].encode("utf-8") if is_resp else None
    host = (urlsplit(url).hostname or "").lower()
    up.begin(want)
    off = sl.audit_size()
    notes = [note] if note else []
    proxy = "http://127.0.0.1:%d" % sl.port
    s = requests.Session()
    s.trust_env = False
    try:
        r = s.request(method, url, headers=headers, data=body, proxies={"http": proxy, "https": proxy},
                      verify=str(sl.ca_out), timeout=timeout, allow_redirects=False)
        content = r.content
    except requests.exceptions.ProxyError as e:
        # A refused CONNECT: requests hides the head, the audit trail has it.
        events = sl.audit_since(off, host)
        ev = audit_block(events)
        msg = str(e)
        if ev and "Tunnel connection failed: %s" % ev.get("status") in msg and ev.get("status") in BLOCK_STATUSES:
            return "block", {"rule": ev.get("rule"), "scanner": ev.get("scanner"),
                             "status": ev.get("status"), "stage": "CONNECT",
                             "reason": ev.get("reason")}, "; ".join(notes)
        return "error", {"exception": msg[:300]}, "; ".join(notes + ["proxy error, no audited block"])
    except requests.exceptions.RequestException as e:
        arrived = up.arrivals()
        events = sl.audit_since(off, host)
        ev = audit_block(events)
        if is_resp and arrived and ev:
            # The response was cut off by sluice after the head went out.
            return "block", {"rule": ev.get("rule"), "scanner": ev.get("scanner"),
                             "stage": "response cut off", "reason": ev.get("reason")}, "; ".join(notes)
        return "error", {"exception": str(e)[:300], "upstream_received": len(arrived)}, \
            "; ".join(notes + ["transport error"])
    finally:
        s.close()
    arrived = up.arrivals()
    events = sl.audit_since(off, host, wait=1.0)
    if r.status_code in BLOCK_STATUSES and r.headers.get("X-Sluice-Blocked"):
        rule, scanner = refusal_evidence(r)
        ev = {"rule": rule, "scanner": scanner, "status": r.status_code}
        if arrived:
            ev["upstream_received"] = len(arrived)
        return "block", ev, "; ".join(notes)
    if r.headers.get(UPSTREAM_MARK) and r.status_code == 200 and arrived:
        a = arrived[-1]
        ev = {"status": 200, "upstream_received": len(arrived), "upstream_method": a["method"],
              "upstream_path": a["path"][:200], "upstream_tls": a["tls"]}
        if a["method"] != method:
            notes.append("upstream saw method %s" % a["method"])
        if body is not None and a["body"] != body:
            notes.append("upstream got a different body (%d bytes vs %d)" % (len(a["body"]), len(body)))
        if is_resp and content != want:
            # Delivered, but not unchanged: only sluice could have changed it.
            ev["delivered_bytes"] = len(content)
            return "block", dict(ev, rule="(body altered)", scanner="?"), \
                "; ".join(notes + ["response body altered in transit"])
        return "allow", ev, "; ".join(notes) + findings_note(events)
    err = r.headers.get("X-Sluice-Error", "")
    return "error", {"status": r.status_code, "x_sluice_error": err, "body": r.text[:200],
                     "upstream_received": len(arrived)}, \
        "; ".join(notes + ["status %d %s" % (r.status_code, err)])


# ---------------------------------------------------------------- scoring


def score_of(expected, actual):
    if actual in ("not_applicable", "error"):
        return actual
    return "pass" if actual == expected else "fail"


def tally(rows):
    """Per category and overall: containment and FP rate, full and applicable."""
    groups = OrderedDict()
    for r in rows:
        for key in (r["_category"], "ALL"):
            g = groups.setdefault(key, {"atk": 0, "atk_blk": 0, "atk_app": 0, "ben": 0, "ben_blk": 0,
                                        "ben_app": 0, "na": 0, "err": 0})
            app = r["actual_verdict"] in ("block", "allow")
            if r["expected_verdict"] == "block":
                g["atk"] += 1
                g["atk_app"] += app
                g["atk_blk"] += r["actual_verdict"] == "block"
            else:
                g["ben"] += 1
                g["ben_app"] += app
                g["ben_blk"] += r["actual_verdict"] == "block"
            g["na"] += r["actual_verdict"] == "not_applicable"
            g["err"] += r["actual_verdict"] == "error"
    allg = groups.pop("ALL")
    out = OrderedDict(sorted(groups.items()))
    out["ALL"] = allg
    return out


def frac(a, b):
    return "%d/%d (%.1f%%)" % (a, b, 100.0 * a / b) if b else "%d/0 (-)" % a


def score_table(t):
    lines = ["| category | containment full | containment applicable | FP full | FP applicable | n/a | error |",
             "|---|---|---|---|---|---|---|"]
    for k, g in t.items():
        name = "**overall**" if k == "ALL" else k
        lines.append("| %s | %s | %s | %s | %s | %d | %d |" % (
            name, frac(g["atk_blk"], g["atk"]), frac(g["atk_blk"], g["atk_app"]),
            frac(g["ben_blk"], g["ben"]), frac(g["ben_blk"], g["ben_app"]), g["na"], g["err"]))
    return "\n".join(lines)


def one_line(r):
    ev = r["evidence"] or {}
    if r["actual_verdict"] == "block":
        why = "blocked by %s (%s)" % (ev.get("rule"), ev.get("scanner"))
    elif r["actual_verdict"] == "allow":
        why = "no rule matched; reached the upstream"
    else:
        why = r["actual_verdict"]
    n = r["notes"]
    return "- `%s` (%s, %s): %s%s" % (r["case_id"], r["_category"], r["_transport"], why,
                                       "; " + n if n else "")


def git(*args):
    try:
        return subprocess.run(["git", "-C", str(REPO)] + list(args), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_doc(path, rows, t, meta):
    atk_missed = [r for r in rows if r["expected_verdict"] == "block" and r["actual_verdict"] == "allow"]
    atk_err = [r for r in rows if r["expected_verdict"] == "block" and r["actual_verdict"] == "error"]
    fps = [r for r in rows if r["expected_verdict"] == "allow" and r["actual_verdict"] == "block"]
    ben_err = [r for r in rows if r["expected_verdict"] == "allow" and r["actual_verdict"] == "error"]
    na = [r for r in rows if r["actual_verdict"] == "not_applicable"]
    na_by = OrderedDict()
    for r in na:
        na_by[r["_transport"]] = na_by.get(r["_transport"], 0) + 1
    a = t["ALL"]
    L = []
    L.append("# agent-egress-bench score (sluice, real proxy)")
    L.append("")
    L.append("Generated by `tests/aeb/run_aeb.py` (rerun it; only the analysis at the end is"
             " written by hand).")
    L.append("")
    L.append("- date: %s" % meta["date"])
    L.append("- sluice: %s, commit `%s`%s" % (meta["version"], meta["commit"],
                                               " (worktree had uncommitted changes)" if meta["dirty"] else ""))
    L.append("- corpus: %d cases from `%s` (%d attacks, %d benign)" % (len(rows), meta["corpus"], a["atk"], a["ben"]))
    L.append("- reproduce (from the repo root, after `cmake -S . -B build -G Ninja && ninja -C build`):")
    L.append("")
    L.append("      python3 tests/aeb/run_aeb.py")
    L.append("")
    L.append("  (per-case results: `bench/out/aeb-results.jsonl`, one JSON line per case in the"
             " upstream runner format).")
    L.append("")
    L.append("## Headline")
    L.append("")
    L.append("| view | containment (blocked attacks / attacks) | false positives (blocked benign / benign) |")
    L.append("|---|---|---|")
    L.append("| full (n/a and errors count as misses) | %s | %s |" % (frac(a["atk_blk"], a["atk"]),
                                                                  frac(a["ben_blk"], a["ben"])))
    L.append("| applicable (only cases sluice could run) | %s | %s |" % (frac(a["atk_blk"], a["atk_app"]),
                                                                     frac(a["ben_blk"], a["ben_app"])))
    L.append("")
    L.append("Not applicable: %d cases (%s): sluice does not inspect these transports yet, so they"
             " are reported as `not_applicable`, never as a pass. Errors: %d." % (
                 len(na), ", ".join("%s %d" % kv for kv in na_by.items()), a["err"]))
    L.append("")
    L.append("## Per category")
    L.append("")
    L.append(score_table(t))
    L.append("")
    L.append("## How it is measured")
    L.append("")
    L.append("- One `sluice run` (built-in rules, inspection on, defaults otherwise) with"
             " `policy.deny: [exfil-collector.example.net]` and a `routes` entry sending every"
             " host name that appears in the runnable cases' URLs to one local upstream (plain"
             " HTTP and TLS on the same port; its certificate comes from a throwaway CA made with"
             " `openssl`, trusted per route via `ca_file`). IP-literal targets are not routed."
             " Every policy decision is made on the original name.")
    L.append("- `fetch_proxy` cases are sent as plain HTTP through the proxy (absolute-form;"
             " `https://` URLs are sent as `http://` with the same host, path and query, since"
             " sluice accepts absolute-form for http:// only). `http_proxy` cases are sent as"
             " written: `https://` through `CONNECT` with TLS interception, the client trusting"
             " sluice's CA from `tls.ca_out`.")
    L.append("- `block` = sluice's own refusal (403/407/429 with `X-Sluice-Blocked`; a refused"
             " `CONNECT` is attributed through the audit event); `allow` = the upstream recorded"
             " the request (and for `response_content` the agent received the case body byte for"
             " byte); 400, 502, 504, timeouts and resets are `error`.")
    L.append("- Nothing is added to the requests to help correlation: cases run one at a time.")
    L.append("")
    L.append("## Missed attacks (%d allowed, %d errors)" % (len(atk_missed), len(atk_err)))
    L.append("")
    L.extend(one_line(r) for r in atk_missed + atk_err)
    if not atk_missed and not atk_err:
        L.append("none")
    L.append("")
    L.append("## False positives (%d blocked, %d errors)" % (len(fps), len(ben_err)))
    L.append("")
    L.extend(one_line(r) for r in fps + ben_err)
    if not fps and not ben_err:
        L.append("none")
    L.append("")
    L.append(ANALYSIS_MARK)
    keep = ""
    try:
        prev = Path(path).read_text()
        if ANALYSIS_MARK in prev:
            keep = prev.split(ANALYSIS_MARK, 1)[1].lstrip("\n")
    except OSError:
        pass
    Path(path).write_text("\n".join(L) + "\n" + keep)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "aeb"),
                    help="agent-egress-bench snapshot (default: <repo>/../shared/aeb)")
    ap.add_argument("--sluice", default=os.environ.get("SLUICE_BIN", str(REPO / "build" / "sluice")))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "aeb-results.jsonl"))
    ap.add_argument("--doc", default=str(REPO / "docs" / "aeb-score.md"),
                    help="score document to write ('' = do not write)")
    ap.add_argument("--timeout", type=float, default=20.0, help="per-case timeout, seconds")
    ap.add_argument("--start-timeout", type=float, default=180.0,
                    help="seconds to wait for sluice to listen (first start compiles rules)")
    ap.add_argument("--only", default="", help="run only case ids containing this string")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    cases = load_cases(args.corpus)
    if args.only:
        cases = [c for c in cases if args.only in c["id"]]
    if not os.access(args.sluice, os.X_OK):
        sys.exit("aeb: sluice binary not found at %s (build it, or pass --sluice)" % args.sluice)
    if shutil.which("openssl") is None:
        sys.exit("aeb: the openssl CLI is needed for the upstream test CA")

    runnable = [c for c in cases if c.get("transport") in SUPPORTED]
    hosts = set()
    for c in runnable:
        h = urlsplit(c["payload"]["url"]).hostname
        if h and not is_ip_literal(h):
            hosts.add(h.lower())

    version = subprocess.run([args.sluice, "--version"], capture_output=True, text=True).stdout.strip() or "?"
    # The product is src/ and rules/: name the last commit that changed them,
    # so committing a new score document does not change the reported commit.
    commit = git("log", "-1", "--format=%h", "--abbrev=12", "--", "src", "rules", "CMakeLists.txt")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "src", "rules", "CMakeLists.txt"))
    tool_version = "%s (%s%s)" % (version.replace("sluice ", ""), commit, "+dirty" if dirty else "")

    tmp = Path(tempfile.mkdtemp(prefix="aeb-"))
    up = sl = None
    rows = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        up_ca, up_crt, up_key = make_upstream_pki(tmp, hosts)
        up = Upstream(up_crt, up_key)
        routes = [(h, "127.0.0.1:%d" % up.port) for h in sorted(hosts)]
        sl = Sluice(args.sluice, tmp, routes, up_ca)
        sl.start(args.start_timeout)
        print("aeb: sluice %s on 127.0.0.1:%d, upstream 127.0.0.1:%d, %d routed hosts, %d/%d cases runnable"
              % (tool_version, sl.port, up.port, len(hosts), len(runnable), len(cases)), flush=True)
        for c in cases:
            if c.get("transport") not in SUPPORTED:
                actual, ev, notes = "not_applicable", None, \
                    "transport %s not supported by sluice yet (input %s)" % (c.get("transport"), c.get("input_type"))
            else:
                if not sl.alive():
                    actual, ev, notes = "error", None, "sluice is not running (crashed earlier)"
                else:
                    try:
                        actual, ev, notes = run_case(c, sl, up, args.timeout)
                    except Exception as e:  # a runner bug must not become a verdict
                        actual, ev, notes = "error", {"exception": repr(e)[:300]}, "runner exception"
                    if not sl.alive():
                        actual, notes = "error", (notes + "; " if notes else "") + \
                            "sluice died (rc=%s)" % sl.proc.returncode
            row = OrderedDict([
                ("case_id", c["id"]), ("tool", "sluice"), ("tool_version", tool_version),
                ("expected_verdict", c["expected_verdict"]), ("actual_verdict", actual),
                ("score", score_of(c["expected_verdict"], actual)), ("evidence", ev), ("notes", notes),
            ])
            row["_category"] = c.get("category", "?")
            row["_transport"] = c.get("transport", "?")
            rows.append(row)
            if args.verbose or row["score"] in ("fail", "error"):
                if row["score"] != "not_applicable":
                    print("  %-5s %-45s expected %-5s got %-6s %s %s" % (
                        row["score"], c["id"], c["expected_verdict"], actual,
                        json.dumps(ev)[:160] if ev else "", notes), flush=True)
    except KeyboardInterrupt:
        print("aeb: interrupted", file=sys.stderr)
        return 130
    finally:
        if sl:
            sl.stop()
        if up:
            up.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) + "\n")
    t = tally(rows)
    print()
    print(score_table(t))
    a = t["ALL"]
    print("\ncontainment: full %s, applicable %s" % (frac(a["atk_blk"], a["atk"]), frac(a["atk_blk"], a["atk_app"])))
    print("false positives: full %s, applicable %s" % (frac(a["ben_blk"], a["ben"]), frac(a["ben_blk"], a["ben_app"])))
    print("results: %s" % out)
    if args.doc:
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "version": version, "commit": commit, "dirty": dirty,
                "corpus": os.path.relpath(args.corpus, REPO)}
        write_doc(args.doc, rows, t, meta)
        print("score document: %s" % args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
