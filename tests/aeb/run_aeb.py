#!/usr/bin/env python3
"""Honest agent-egress-bench runner for sluice: drives the REAL proxy.

For every corpus case whose transport sluice carries (fetch_proxy,
http_proxy, websocket, a2a, mcp_http) the runner sends exactly the traffic
the case describes through a running `sluice run` and observes what happened:

  block  sluice refused with its own signal (403/407/429 + X-Sluice-Blocked,
         a refused CONNECT that the audit trail attributes to a rule, or a
         WebSocket close from sluice whose reason and audit event name the
         rule), and for response_content / Agent Cards the agent did not get
         the body unchanged.
  allow  the local upstream really received the request or every WebSocket
         message unchanged (and for response_content / Agent Cards the agent
         got the body byte for byte).
  error  anything else: 502/504, 400, timeouts, resets, crashes.

mcp_stdio cases are `not_applicable` (sluice is an HTTP gateway; a stdio
pipe between an agent and a local tool server never crosses it), never a
pass. See tests/aeb/README.md.

Nothing in the request is added or changed to help the runner correlate:
cases run one at a time, and the upstream attributes whatever arrives to the
case in flight.
"""

import argparse
import base64
import datetime
import hashlib
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
SUPPORTED = ("fetch_proxy", "http_proxy", "websocket", "a2a", "mcp_http")
# JSON-RPC cases carry messages, not URLs: the runner sends them to fixed
# endpoints (HTTPS through CONNECT + interception, as agents reach remote MCP
# servers and A2A agents). The MCP server is the approved one
# (policy.mcp.servers): the cases are attacks in the arguments of calls to a
# tool server the operator allowed, not calls to an unknown server.
MCP_ENDPOINT = "https://mcp.example.com/mcp"
A2A_ENDPOINT = "https://a2a-agent.example.com/a2a"
# An Agent Card is fetched from the well-known path of the origin in its own
# `url` field (or this host when the card has none).
CARD_PATH = "/.well-known/agent-card.json"
CARD_DEFAULT_HOST = "a2a-agent.example.com"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
WS_OPCODES = {"continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
# Close codes sluice uses to refuse a message (docs/inspection.md, WebSocket):
# 1008 policy, 1009 too big, 1002/1007 protocol refusal (fail closed).
WS_REFUSAL_CODES = (1008, 1009, 1002, 1007)
UPSTREAM_CLOSE_REASON = b"aeb upstream"
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
    if case["transport"] in ("a2a", "mcp_http"):
        return rpc_url(case), ""
    url = case["payload"]["url"]
    if case["transport"] == "fetch_proxy":
        p = urlsplit(url)
        if p.scheme == "https":
            return urlunsplit(("http",) + tuple(p[1:])), "https:// sent as plain http:// (fetch_proxy)"
    return url, ""


def rpc_url(case):
    """Where a JSON-RPC case goes: the MCP server, the A2A agent, or the
    well-known Agent Card path of the card's own origin."""
    if case["transport"] == "mcp_http":
        return MCP_ENDPOINT
    if case["input_type"] == "a2a_agent_card":
        card = case["payload"].get("agent_card") or {}
        host = urlsplit(str(card.get("url") or "")).hostname or ""
        if not host or is_ip_literal(host):
            host = CARD_DEFAULT_HOST
        return "https://%s%s" % (host, CARD_PATH)
    return A2A_ENDPOINT


def case_host(case):
    return (urlsplit(wire_url(case)[0]).hostname or "").lower()


# ---------------------------------------------------------------- WebSocket frames


def ws_encode(opcode, payload, fin=True, rsv1=False, mask=None):
    """One RFC 6455 frame; `mask` (4 bytes) for client frames."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (opcode & 0x0F)
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return head + mask + payload
    return head + payload


def ws_read_frame(read):
    """Reads one frame with `read(n)` (returns exactly n bytes or raises
    EOFError); returns (fin, rsv1, opcode, payload) with the mask removed."""
    h = read(2)
    fin, rsv1, opcode = bool(h[0] & 0x80), bool(h[0] & 0x40), h[0] & 0x0F
    masked, n = bool(h[1] & 0x80), h[1] & 0x7F
    if n == 126:
        n = int.from_bytes(read(2), "big")
    elif n == 127:
        n = int.from_bytes(read(8), "big")
    mask = read(4) if masked else None
    payload = read(n) if n else b""
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return fin, rsv1, opcode, payload


def ws_case_frames(case):
    """The case's frames as (fin, rsv1, opcode, payload bytes)."""
    out = []
    for f in case["payload"]["frames"]:
        data = f.get("payload", "")
        if (f.get("encoding") or "").lower() == "base64":
            data = base64.b64decode(data)
        else:
            data = data.encode("utf-8")
        out.append((f.get("fin", True) is not False, bool(f.get("rsv1")),
                    WS_OPCODES[f.get("opcode", "text")], data))
    return out


def ws_messages(frames):
    """Data messages (opcode, payload, rsv1 of the first frame) reassembled
    from frames; control frames are left out."""
    msgs, cur = [], None
    for fin, rsv1, op, data in frames:
        if op >= 8:
            continue
        if op != 0:
            cur = [op, data, rsv1]
        elif cur is not None:
            cur[1] += data
        if fin and cur is not None:
            msgs.append(tuple(cur))
            cur = None
    return msgs


def rule_example(rule_id):
    """The first `match` example of a built-in rule (rules/*.yaml)."""
    import yaml
    for f in sorted((REPO / "rules").glob("*.yaml")):
        for r in yaml.safe_load(f.read_text())["rules"]:
            if r["id"] == rule_id:
                return r["examples"]["match"][0]
    raise KeyError(rule_id)


def control_cases():
    """Cases built from the rules' own examples (not from the corpus) that
    sluice must block, plus benign twins it must allow: they prove that every
    transport path of the runner can observe a block and an allow, so a miss
    on the corpus is rule coverage, not plumbing. `--self-check` runs them."""
    key = rule_example("aws-access-key-id").split("=")[-1].strip()
    inj = rule_example("inj-ignore-previous-instructions")
    half = len(key) // 2

    def case(cid, transport, itype, verdict, payload):
        return {"id": cid, "category": "self_check", "transport": transport, "input_type": itype,
                "expected_verdict": verdict, "payload": payload}

    def ws(url, frames):
        return {"url": url, "frames": frames}

    def rpc(method, params):
        return {"jsonrpc_messages": [{"jsonrpc": "2.0", "id": 1, "method": method, "params": params}]}

    def a2a(part):
        return rpc("message/send", {"message": {"role": "user", "messageId": "m", "parts": [part]}})

    def card(desc):
        return {"agent_card": {"name": "self-check", "description": desc, "url": "https://cards.example.com/a",
                               "skills": [{"id": "s", "name": "S", "description": "Does things"}]}}

    return [
        case("self-ws-fragments-block", "websocket", "websocket_frame", "block", ws("wss://ws.example.com/ws", [
            {"opcode": "text", "fin": False, "payload": "key " + key[:half]},
            {"opcode": "continuation", "fin": True, "payload": key[half:]}])),
        case("self-ws-plain-binary-block", "websocket", "websocket_frame", "block", ws("ws://ws.example.com/ws", [
            {"opcode": "binary", "encoding": "base64",
             "payload": base64.b64encode(("key=" + key).encode()).decode()}])),
        case("self-ws-allow", "websocket", "websocket_frame", "allow", ws("wss://ws.example.com/ws", [
            {"opcode": "text", "fin": False, "payload": "hello "},
            {"opcode": "continuation", "fin": True, "payload": "world"},
            {"opcode": "text", "payload": "second message"}])),
        case("self-mcp-split-args-block", "mcp_http", "mcp_tool_call", "block", rpc(
            "tools/call", {"name": "t", "arguments": {"a": key[:half], "b": key[half:]}})),
        case("self-mcp-allow", "mcp_http", "mcp_tool_call", "allow", rpc(
            "tools/call", {"name": "t", "arguments": {"city": "Paris"}})),
        case("self-a2a-data-block", "a2a", "a2a_message", "block", a2a({"kind": "data", "data": {"k": key}})),
        case("self-a2a-allow", "a2a", "a2a_message", "allow", a2a({"kind": "text", "text": "What is the weather?"})),
        case("self-card-block", "a2a", "a2a_agent_card", "block", card(inj)),
        case("self-card-allow", "a2a", "a2a_agent_card", "allow", card("Answers questions about the weather")),
    ]


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
                if (self.headers.get("Upgrade") or "").lower() == "websocket":
                    return self._websocket()
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

            def _websocket(self):
                """Accepts the upgrade (no extension), records every frame
                and message, answers pings, and answers a close with 1000."""
                self.close_connection = True
                key = (self.headers.get("Sec-WebSocket-Key") or "").encode()
                rec = {"method": self.command, "path": self.path, "tls": self.tls,
                       "headers": dict(self.headers.items()), "body": b"", "ws": True,
                       "frames": [], "messages": [], "close": None}
                with up.lock:
                    up.seen.append(rec)
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept",
                                 base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode())
                self.end_headers()
                self.wfile.flush()

                def read(n):
                    b = self.rfile.read(n)
                    if len(b) != n:
                        raise EOFError
                    return b

                try:
                    while True:
                        fr = ws_read_frame(read)
                        fin, rsv1, op, data = fr
                        with up.lock:
                            rec["frames"].append(fr)
                            rec["messages"] = ws_messages(rec["frames"])
                        if op == 9:
                            self.wfile.write(ws_encode(10, data))
                        elif op == 8:
                            with up.lock:
                                rec["close"] = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                            self.wfile.write(ws_encode(8, (1000).to_bytes(2, "big") + UPSTREAM_CLOSE_REASON))
                            return
                except (EOFError, OSError, ssl.SSLError):
                    return

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
            "  mcp: { servers: [%s] }" % yaml_str(urlsplit(MCP_ENDPOINT).hostname),
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

    def audit_size(self, settle=0.15):
        """The audit file's size once it has stopped growing for `settle`
        seconds (lines of the previous exchange may still be on their way)."""
        last, stable_since = -1, time.monotonic()
        while True:
            try:
                n = self.audit.stat().st_size
            except OSError:
                n = 0
            if n != last:
                last, stable_since = n, time.monotonic()
            elif time.monotonic() - stable_since >= settle:
                return n
            time.sleep(0.03)

    def audit_since(self, offset, host, wait=1.5, want=None):
        """Audit events for `host` written after `offset` (lines are batched
        per loop turn, so wait a little for them; filtering by host keeps a
        late line of the previous case out). With `want`, wait until one
        event satisfies it."""
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
            if (any(want(e) for e in events) if want else events) or time.monotonic() >= deadline:
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
    if case["transport"] == "websocket":
        return run_ws_case(case, sl, up, timeout)
    if case["transport"] in ("a2a", "mcp_http"):
        return run_rpc_case(case, sl, up, timeout)
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
    return http_exchange(sl, up, method, url, headers, body, want, timeout, [note] if note else [])


def run_rpc_case(case, sl, up, timeout):
    """A2A and MCP over HTTP. An Agent Card is fetched (GET of the well-known
    path) from an upstream that serves the card; every JSON-RPC message is
    POSTed on its own, in order, as a client library does. A case is blocked
    when sluice refuses any of its messages, allowed when the upstream
    received all of them."""
    url, _ = wire_url(case)
    p = case["payload"]
    if case["input_type"] == "a2a_agent_card":
        want = json.dumps(p["agent_card"], indent=2).encode("utf-8")
        return http_exchange(sl, up, "GET", url, {"Accept": "application/json"}, None, want, timeout,
                             ["GET %s" % url])
    msgs = p.get("jsonrpc_messages") or []
    if not msgs:
        return "error", None, "case has no jsonrpc_messages"
    headers = {"Content-Type": "application/json"}
    if case["transport"] == "mcp_http":
        headers["Accept"] = "application/json, text/event-stream"
    allowed = []
    for i, m in enumerate(msgs):
        body = json.dumps(m).encode("utf-8")
        note = "POST %s message %d/%d (%s)" % (url, i + 1, len(msgs), m.get("method", "response"))
        v, ev, notes = http_exchange(sl, up, "POST", url, dict(headers), body, None, timeout, [note])
        if v != "allow":
            return v, ev, notes
        allowed.append(ev)
    ev = dict(allowed[-1], messages_delivered=len(allowed))
    return "allow", ev, notes


def http_exchange(sl, up, method, url, headers, body, want, timeout, notes):
    """One HTTP request through sluice; `want` is the response body the
    upstream serves (and the agent must receive unchanged), or None."""
    is_resp = want is not None
    host = (urlsplit(url).hostname or "").lower()
    up.begin(want)
    off = sl.audit_size()
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
        # Let the refusal's audit line land now, not in the next case's window.
        sl.audit_since(off, host, wait=1.0, want=lambda e: e.get("verdict") == "block")
        rule, scanner = refusal_evidence(r)
        ev = {"rule": rule, "scanner": scanner, "status": r.status_code}
        if arrived:
            # sluice may have sent the head before the body's verdict; say
            # how much of the body got through (0 = only the head).
            ev["upstream_received"] = len(arrived)
            if body is not None:
                ev["upstream_body_bytes"] = len(arrived[-1]["body"])
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


class WsConn:
    """A raw WebSocket client through the proxy: plain ws:// as an
    absolute-form upgrade, wss:// through CONNECT with interception (the
    client trusts sluice's CA). Frames are written exactly as the case gives
    them (fin, rsv1, opcode), masked as a client must."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def recv_exact(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError
            self.buf += b
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length") or 0)
        body = self.recv_exact(n) if n and status != 101 else b""
        return status, hdrs, body


def ws_refusal(status, hdrs, body, stage):
    """An HTTP refusal of the CONNECT or the upgrade, if it is sluice's."""
    if status in BLOCK_STATUSES and hdrs.get("x-sluice-blocked"):
        rule, scanner = hdrs.get("x-sluice-blocked"), ""
        try:
            j = json.loads(body)
            rule, scanner = j.get("rule") or rule, j.get("scanner") or ""
        except ValueError:
            pass
        return {"rule": rule, "scanner": scanner, "status": status, "stage": stage}
    return None


def run_ws_case(case, sl, up, timeout):
    """Upgrade through sluice, send the case's frames, then a normal close.

    block: sluice closes with a refusal code (1008/1009, or 1002/1007 for a
           frame it refuses to relay) and the close reason names sluice; the
           audit event of the exchange gives rule and scanner. An HTTP
           refusal of the CONNECT or the upgrade counts as for HTTP cases.
    allow: the upstream received every data message of the case unchanged
           and the connection ended with the upstream's own close.
    error: anything else."""
    url = case["payload"]["url"]
    p = urlsplit(url)
    host = (p.hostname or "").lower()
    tls = p.scheme == "wss"
    port = p.port or (443 if tls else 80)
    frames = ws_case_frames(case)
    want = ws_messages(frames)
    up.begin(None)
    off = sl.audit_size()
    notes = []
    sock = socket.create_connection(("127.0.0.1", sl.port), timeout=timeout)
    conn = WsConn(sock)
    closed = None  # (code, reason) of the close the agent received
    write_error = None
    try:
        authority = "%s:%d" % (host, port)
        if tls:
            sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
            status, hdrs, body = conn.read_head()
            if status != 200:
                ev = ws_refusal(status, hdrs, body, "CONNECT")
                if ev:
                    return "block", ev, ""
                return "error", {"status": status, "stage": "CONNECT"}, "CONNECT status %d" % status
            ctx = ssl.create_default_context(cafile=str(sl.ca_out))
            sock = ctx.wrap_socket(sock, server_hostname=host)
            conn = WsConn(sock)
            target = urlunsplit(("", "", p.path or "/", p.query, ""))
        else:
            target = urlunsplit(("http", p.netloc, p.path or "/", p.query, ""))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                      % (target, host if port == (443 if tls else 80) else authority, key)).encode())
        status, hdrs, body = conn.read_head()
        if status != 101:
            ev = ws_refusal(status, hdrs, body, "upgrade")
            if ev:
                return "block", ev, ""
            return "error", {"status": status, "stage": "upgrade",
                             "x_sluice_error": hdrs.get("x-sluice-error", "")}, "upgrade answered %d" % status
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != accept:
            return "error", {"status": 101}, "bad Sec-WebSocket-Accept"
        try:
            for fin, rsv1, op, data in frames:
                sock.sendall(ws_encode(op, data, fin, rsv1, os.urandom(4)))
            sock.sendall(ws_encode(8, (1000).to_bytes(2, "big"), mask=os.urandom(4)))
        except (OSError, ssl.SSLError) as e:
            write_error = str(e)[:120]  # sluice may already have closed; read what it sent
        while True:
            fin, rsv1, op, data = ws_read_frame(conn.recv_exact)
            if op == 8:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                closed = (code, data[2:].decode("utf-8", "replace"))
                break
    except (EOFError, OSError, ssl.SSLError) as e:
        if closed is None:
            notes.append("connection ended without a close frame (%s)" % (str(e)[:120] or "EOF"))
    finally:
        try:
            sock.close()
        except OSError:
            pass
    arrived = [a for a in up.arrivals() if a.get("ws")]
    got = list(arrived[-1]["messages"]) if arrived else []
    events = sl.audit_since(off, host, wait=2.0, want=lambda e: e.get("status") == 101)
    ev101 = next((e for e in events if e.get("status") == 101), None)
    if write_error:
        notes.append("write failed after the refusal (%s)" % write_error)
    delivered = sum(1 for m in got if m in want)
    if closed and closed[0] in WS_REFUSAL_CODES and closed[1].startswith("sluice"):
        ev = {"close_code": closed[0], "close_reason": closed[1][:120],
              "messages_delivered": "%d/%d" % (delivered, len(want))}
        if ev101:
            ev.update(rule=ev101.get("rule"), scanner=ev101.get("scanner"),
                      audit_verdict=ev101.get("verdict"), reason=(ev101.get("reason") or "")[:160])
        else:
            ev.update(rule=closed[1], scanner="?")
            notes.append("no audit event for the exchange")
        if closed[0] in (1002, 1007):
            notes.append("protocol refusal (close %d), not a content finding" % closed[0])
        return "block", ev, "; ".join(notes)
    if closed and closed[0] == 1000 and closed[1] == UPSTREAM_CLOSE_REASON.decode() and got == want:
        ev = {"close_code": 1000, "messages_delivered": "%d/%d" % (delivered, len(want)),
              "upstream_path": arrived[-1]["path"][:200], "upstream_tls": arrived[-1]["tls"]}
        return "allow", ev, "; ".join(notes) + findings_note(events)
    ev = {"close": list(closed) if closed else None, "messages_delivered": "%d/%d" % (delivered, len(want)),
          "upstream_upgrades": len(arrived)}
    if ev101:
        ev.update(audit_verdict=ev101.get("verdict"), rule=ev101.get("rule"))
    if got and got != want:
        notes.append("upstream got different messages")
    return "error", ev, "; ".join(notes + ["no refusal and not delivered unchanged"])


# ---------------------------------------------------------------- scoring


def score_of(expected, actual):
    if actual in ("not_applicable", "error"):
        return actual
    return "pass" if actual == expected else "fail"


def tally(rows, by="_category"):
    """Per category (or transport) and overall: containment and FP rate, full
    and applicable."""
    groups = OrderedDict()
    for r in rows:
        for key in (r[by], "ALL"):
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


def score_table(t, label="category"):
    lines = ["| " + label + " | containment full | containment applicable | FP full | FP applicable | n/a | error |",
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
        why = "no blocking rule; reached the upstream" if r["_transport"] != "websocket" else \
            "no blocking rule; every message reached the upstream"
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
    L.append("Not applicable: %d cases (%s): MCP over stdio is a pipe between the agent and a"
             " local tool server, which never crosses an HTTP gateway, so these are reported as"
             " `not_applicable`, never as a pass (the full view counts them as misses). Errors: %d."
             % (len(na), ", ".join("%s %d" % kv for kv in na_by.items()) or "none", a["err"]))
    proto = [r for r in rows if r["actual_verdict"] == "block" and (r["evidence"] or {}).get("close_code") in (1002, 1007)]
    if proto:
        L.append("")
        L.append("Of the blocks, %d %s a WebSocket protocol refusal (close 1002/1007: sluice refused to"
                 " relay a frame it cannot inspect, e.g. RSV1 without negotiated compression), not a"
                 " content finding: %s." % (len(proto), "is" if len(proto) == 1 else "are",
                                            ", ".join("`%s`" % r["case_id"] for r in proto)))
    L.append("")
    L.append("## Per category")
    L.append("")
    L.append(score_table(t))
    L.append("")
    L.append("## Per transport")
    L.append("")
    L.append(score_table(tally(rows, "_transport"), "transport"))
    L.append("")
    L.append("## How it is measured")
    L.append("")
    L.append("- One `sluice run` (built-in rules, inspection on, defaults otherwise) with"
             " `policy.deny: [exfil-collector.example.net]`, `policy.mcp.servers: [%s]` (so"
             " `policy.mcp.shadow: auto` means `block` for MCP to any other host) and a `routes`"
             " entry sending every host name the runnable cases use to one local upstream (plain"
             " HTTP, TLS and WebSocket on the same port; its certificate comes from a throwaway CA"
             " made with `openssl`, trusted per route via `ca_file`). IP-literal targets are not"
             " routed. Every policy decision is made on the original name. The configuration is"
             " the same for every case." % urlsplit(MCP_ENDPOINT).hostname)
    L.append("- `fetch_proxy` cases are sent as plain HTTP through the proxy (absolute-form;"
             " `https://` URLs are sent as `http://` with the same host, path and query, since"
             " sluice accepts absolute-form for http:// only). `http_proxy` cases are sent as"
             " written: `https://` through `CONNECT` with TLS interception, the client trusting"
             " sluice's CA from `tls.ca_out`.")
    L.append("- `websocket` cases really upgrade: `wss://` through `CONNECT` with interception,"
             " `ws://` as an absolute-form upgrade. The runner writes the case's frames exactly"
             " (opcode, FIN, RSV1, base64-decoded binary payloads; masked), then a normal close"
             " 1000. The upstream accepts the upgrade without extensions, records every frame and"
             " reassembled message, and answers a close with its own 1000.")
    L.append("- `mcp_http` cases are attacks in the arguments of tool calls to a tool server the"
             " operator approved, so each JSON-RPC message is POSTed (`application/json`, as MCP"
             " streamable HTTP does) to `%s`, the host listed in `policy.mcp.servers`. `a2a`"
             " messages are POSTed the same way to the A2A agent `%s`. Each message is one"
             " request, in order; nothing is added (no `initialize` handshake the case does not"
             " contain). An `a2a_agent_card` case is a `GET` of `https://<host of the card's"
             " url>%s`, answered by the upstream with the card (JSON)." % (
                 MCP_ENDPOINT, A2A_ENDPOINT, CARD_PATH))
    L.append("- `block` = sluice's own refusal: 403/407/429 with `X-Sluice-Blocked` (a refused"
             " `CONNECT` is attributed through the audit event); for WebSocket a close frame from"
             " sluice with code 1008 (policy) or 1009 (too big), or 1002/1007 (protocol refusal,"
             " counted and named above), whose reason starts with `sluice`, the rule and scanner"
             " taken from the audit event of the `101` exchange. A JSON-RPC case with several"
             " messages is blocked when any of them is refused.")
    L.append("- `allow` = the upstream recorded the request (for WebSocket: every data message"
             " of the case, unchanged, and the connection ended with the upstream's own close; for"
             " `response_content` and Agent Cards: the agent received the body byte for byte);"
             " 400, 502, 504, timeouts, resets and anything else are `error`.")
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
    ap.add_argument("--self-check", action="store_true",
                    help="run the runner's own control cases (built from the rules' examples) instead of"
                         " the corpus; exit 1 unless all pass; writes no document")
    args = ap.parse_args()

    if args.self_check:
        cases = control_cases()
        args.doc = ""
        if args.out == ap.get_default("out"):
            args.out = str(REPO / "bench" / "out" / "aeb-self-check.jsonl")
    else:
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
        h = case_host(c)
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
                    "transport %s: not traffic an HTTP gateway sees (input %s)" % (c.get("transport"), c.get("input_type"))
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
    if args.self_check:
        bad = [r["case_id"] for r in rows if r["score"] != "pass"]
        print("self-check: %s" % ("all %d control cases pass" % len(rows) if not bad else "FAILED: " + ", ".join(bad)))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
