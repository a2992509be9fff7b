"""MCP and A2A through the real proxy (issue 8): shadow MCP, tools/call
arguments, A2A message parts, Agent Cards, and inspect.suppress. Samples come
from the rules' own examples (rules/*.yaml), so the tests follow the rules."""

import gzip
import json
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from sluice_harness import clean_env, free_port, sluice_bin, to_yaml
from sluice_harness import rule_example as example  # noqa: E402  (the rules' own examples)

ROOT = Path(__file__).resolve().parents[2]


AWS = example("aws-access-key-id").split("=")[-1].strip()
SHELL = example("sh-curl-pipe-shell")
POISON = example("tp-hidden-instruction-tag")
OTHER_KEY = example("anthropic-api-key").split("=", 1)[-1]

APPROVED = "mcp.test"
OTHER = "other.test"


def routes(upstream, extra=()):
    hosts = ["upstream.test", APPROVED, OTHER, "a2a.test"] + list(extra)
    return [{"host": h, "to": upstream.addr} for h in hosts]


def proxies(s):
    return {"http": "http://127.0.0.1:%d" % s.port}


def rpc(method, params=None, id_=1):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    return m


INIT = rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "agent", "version": "1"}})


def post(s, host, body, ctype="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post("http://%s/echo" % host, proxies=proxies(s), data=data,
                         headers={"Content-Type": ctype}, timeout=10)


@pytest.fixture
def mcp_proxy(sluice_factory, upstream):
    return sluice_factory({"routes": routes(upstream),
                           "policy": {"mcp": {"servers": [APPROVED]}}})


def never_reached(upstream, needle):
    time.sleep(0.2)
    for b in upstream.conn_bytes.values():
        assert needle.encode() not in b


# ---- shadow MCP ----------------------------------------------------------

def test_mcp_initialize_to_unapproved_host_is_refused(mcp_proxy, upstream):
    r = post(mcp_proxy, OTHER, INIT)
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "mcp-shadow"
    assert r.json()["scanner"] == "mcp"
    assert upstream.snapshot()["requests"] == []
    never_reached(upstream, "protocolVersion")


def test_mcp_tools_call_in_a_batch_to_unapproved_host_is_refused(mcp_proxy, upstream):
    batch = [rpc("notifications/initialized", id_=None),
             rpc("tools/call", {"name": "search", "arguments": {"q": "weather"}}, 2)]
    r = post(mcp_proxy, OTHER, batch, ctype="text/plain")  # the media type is not trusted
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "mcp-shadow"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_mcp_to_unapproved_host_is_refused(mcp_proxy, upstream, coding):
    """The gate reads the decoded body: Content-Encoding is no way around it."""
    raw = json.dumps(rpc("tools/call", {"name": "search", "arguments": {"q": "weather"}})).encode()
    body = gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)
    r = requests.post("http://%s/echo" % OTHER, proxies=proxies(mcp_proxy), data=body,
                      headers={"Content-Type": "application/json", "Content-Encoding": coding},
                      timeout=10)
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "mcp-shadow"
    assert upstream.snapshot()["requests"] == []


def test_compressed_secret_in_tools_call_to_approved_host_is_refused(mcp_proxy, upstream):
    raw = json.dumps(rpc("tools/call", {"name": "shell", "arguments": {"cmd": SHELL}})).encode()
    r = requests.post("http://%s/echo" % APPROVED, proxies=proxies(mcp_proxy),
                      data=gzip.compress(raw),
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                      timeout=10)
    assert r.status_code == 403


def test_mcp_to_approved_host_passes(mcp_proxy, upstream):
    body = json.dumps(rpc("tools/call", {"name": "search", "arguments": {"q": "weather"}}))
    r = post(mcp_proxy, APPROVED, body)
    assert r.status_code == 200
    assert r.content == body.encode()


def test_shadow_warn_mode_passes_and_is_audited(sluice_factory, upstream):
    s = sluice_factory({"routes": routes(upstream),
                        "policy": {"mcp": {"servers": [APPROVED], "shadow": "warn"}}})
    r = post(s, OTHER, INIT)
    assert r.status_code == 200
    ev = s.audit(1)[0]
    assert ev["verdict"] == "allow"
    assert "mcp-shadow" in ev["findings"]


def test_shadow_default_without_servers_is_warn(sluice_factory, upstream):
    s = sluice_factory({"routes": routes(upstream)})
    r = post(s, OTHER, INIT)
    assert r.status_code == 200
    assert "mcp-shadow" in s.audit(1)[0]["findings"]


def test_shadow_off(sluice_factory, upstream):
    s = sluice_factory({"routes": routes(upstream),
                        "policy": {"mcp": {"servers": [APPROVED], "shadow": "off"}}})
    assert post(s, OTHER, INIT).status_code == 200
    assert "findings" not in s.audit(1)[0]


def test_non_mcp_jsonrpc_passes(mcp_proxy, upstream):
    for body in (rpc("eth_blockNumber", []),
                 rpc("initialize", {"processId": 1, "rootUri": None, "capabilities": {}}),
                 {"method": "GET", "url": "/x"},
                 [1, 2, 3]):
        r = post(mcp_proxy, OTHER, body)
        assert r.status_code == 200, body


def test_duplicate_method_keys_are_refused(mcp_proxy, upstream):
    body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"eth_call","params":{}}'
    r = post(mcp_proxy, OTHER, body)
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "jsonrpc-ambiguous"


def test_invalid_json_to_approved_server_is_refused_elsewhere_passes(mcp_proxy, upstream):
    bad = '{"jsonrpc":"2.0","method":"tools/call",'
    assert post(mcp_proxy, APPROVED, bad).status_code == 403
    assert post(mcp_proxy, OTHER, bad).status_code == 200


def test_large_json_body_streams_and_is_noted(sluice_factory, upstream):
    s = sluice_factory({"routes": routes(upstream),
                        "policy": {"mcp": {"servers": [APPROVED], "max_body": "4KiB"}}})
    big = json.dumps({"data": "x" * 10000})
    r = post(s, OTHER, big)
    assert r.status_code == 200 and r.content == big.encode()
    assert "jsonrpc-unchecked" in s.audit(1)[0]["findings"]
    r = post(s, APPROVED, big)
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "mcp-unverifiable"


# ---- tools/call arguments --------------------------------------------------

def test_secret_in_tools_call_arguments_to_approved_host_is_refused(mcp_proxy, upstream):
    r = post(mcp_proxy, APPROVED,
             rpc("tools/call", {"name": "note", "arguments": {"text": "key " + AWS}}))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"
    never_reached(upstream, AWS)


def test_secret_split_over_tools_call_arguments_is_refused(mcp_proxy, upstream):
    half = len(AWS) // 2
    r = post(mcp_proxy, APPROVED,
             rpc("tools/call", {"name": "note", "arguments": {"a": AWS[:half], "b": AWS[half:]}}))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"
    assert "MCP tools/call arguments" in r.json()["reason"]


def test_shell_obfuscation_in_tools_call_is_refused_but_not_in_a_plain_body(mcp_proxy, upstream):
    r = post(mcp_proxy, APPROVED, rpc("tools/call", {"name": "run", "arguments": {"cmd": SHELL}}))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "sh-curl-pipe-shell"
    # The same text in a JSON document that is not a tool call: no shell scan.
    assert post(mcp_proxy, OTHER, {"note": SHELL}).status_code == 200


# ---- A2A -------------------------------------------------------------------

def a2a_send(parts):
    return rpc("message/send", {"message": {"role": "user", "messageId": "m1", "kind": "message",
                                            "parts": parts}})


def test_a2a_plain_message_passes(mcp_proxy, upstream):
    r = post(mcp_proxy, "a2a.test", a2a_send([{"kind": "text", "text": "hello"},
                                               {"kind": "data", "data": {"n": 1}}]))
    assert r.status_code == 200


def test_a2a_injection_in_a_text_part_is_refused(mcp_proxy, upstream):
    """Another agent's model reads the text parts: prompt injection applies to
    them (but not to an ordinary request body)."""
    inj = example("inj-ignore-previous-instructions")

    def send(body):  # not /echo: an echoed response would be scanned for injection
        return requests.post("http://a2a.test/fixed", proxies=proxies(mcp_proxy),
                             data=json.dumps(body), timeout=10)
    r = send(a2a_send([{"kind": "text", "text": "Summary follows. " + inj}]))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "inj-ignore-previous-instructions"
    r = send({"note": inj})
    assert r.status_code == 200, (r.headers.get("X-Sluice-Blocked"), r.text)


def test_a2a_secret_split_over_text_parts_is_refused(mcp_proxy, upstream):
    half = len(AWS) // 2
    r = post(mcp_proxy, "a2a.test", a2a_send([{"kind": "text", "text": AWS[:half]},
                                               {"kind": "text", "text": AWS[half:]}]))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"
    assert "A2A message" in r.json()["reason"]


def test_a2a_secret_in_text_part_is_refused(mcp_proxy, upstream):
    r = post(mcp_proxy, "a2a.test", a2a_send([{"kind": "text", "text": "use " + AWS}]))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"
    never_reached(upstream, AWS)


def test_a2a_secret_split_in_data_part_is_refused(mcp_proxy, upstream):
    half = len(AWS) // 2
    r = post(mcp_proxy, "a2a.test",
             rpc("tasks/send", {"id": "t1", "message": {"role": "user", "parts": [
                 {"type": "data", "data": {"k1": AWS[:half], "k2": AWS[half:]}}]}}))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"


# ---- Agent Cards -------------------------------------------------------------

class _CardHandler(BaseHTTPRequestHandler):
    card = {}

    def do_GET(self):
        body = json.dumps(self.card).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def card_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _CardHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def card(skill_description):
    return {"name": "Travel agent", "description": "Books trips.", "url": "http://agent.test/a2a",
            "version": "1.0", "skills": [{"id": "book", "name": "book",
                                          "description": skill_description,
                                          "examples": ["book a flight to Oslo"]}]}


def test_agent_card_with_poisoned_skill_is_refused(sluice_factory, upstream, card_server):
    addr = "127.0.0.1:%d" % card_server.server_address[1]
    s = sluice_factory({"routes": [{"host": "agent.test", "to": addr}]})
    _CardHandler.card = card(POISON)
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
        r = requests.get("http://agent.test" + path, proxies=proxies(s), timeout=10)
        assert r.status_code == 403, path
        assert r.headers["X-Sluice-Blocked"] == "tp-hidden-instruction-tag"
    # Tool poisoning is a card (tool list) check: the same JSON elsewhere is
    # an ordinary response.
    r = requests.get("http://agent.test/other.json", proxies=proxies(s), timeout=10)
    assert r.status_code == 200


def test_clean_agent_card_passes(sluice_factory, upstream, card_server):
    addr = "127.0.0.1:%d" % card_server.server_address[1]
    s = sluice_factory({"routes": [{"host": "agent.test", "to": addr}]})
    _CardHandler.card = card("Books flights and hotels.")
    r = requests.get("http://agent.test/.well-known/agent-card.json", proxies=proxies(s),
                     timeout=10)
    assert r.status_code == 200
    assert r.json()["name"] == "Travel agent"


# ---- suppressions --------------------------------------------------------------

def test_suppression_applies_only_to_its_rule_and_hosts(sluice_factory, upstream):
    s = sluice_factory({"routes": routes(upstream),
                        "inspect": {"suppress": [{"rule": "aws-access-key-id",
                                                  "hosts": [APPROVED],
                                                  "reason": "test fixture keys"}]}})
    body = "aws_access_key_id = " + AWS
    r = post(s, APPROVED, body, ctype="text/plain")
    assert r.status_code == 200
    ev = s.audit(1)[0]
    assert ev["verdict"] == "allow"
    assert "aws-access-key-id:suppressed[0]" in ev["findings"]
    assert AWS not in s.audit_text()
    # Another host: refused.
    r = post(s, OTHER, body, ctype="text/plain")
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"
    # Another rule on the suppressed host: refused.
    r = post(s, APPROVED, "key " + OTHER_KEY, ctype="text/plain")
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "anthropic-api-key"


def test_suppression_config_errors(tmp_path):
    for k, (entry, needle) in enumerate((
            ({"rule": "aws-access-key-id", "hosts": [APPROVED]}, "reason"),
            ({"rule": "aws-access-key-id", "reason": "  "}, "reason"),
            ({"rule": "no-such-rule", "reason": "x"}, "no-such-rule"))):
        cfg = tmp_path / ("bad%d.yaml" % k)
        cfg.write_text(to_yaml({"listen": ["127.0.0.1:%d" % free_port()], "audit": {"path": "off"},
                                "inspect": {"suppress": [entry]}}) + "\n")
        r = subprocess.run([sluice_bin(), "run", "-c", str(cfg)], capture_output=True, text=True,
                           timeout=120, env=clean_env())
        assert r.returncode != 0, entry
        assert needle in r.stderr, r.stderr
