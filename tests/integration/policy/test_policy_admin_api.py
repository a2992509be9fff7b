"""The admin API itself: authentication, strictness, configuration checks,
audit events for every change, the CLI."""

import json
import os
import socket
import stat
import subprocess

import pytest

from policy_harness import ADMIN_TOKEN, admin_request, sluice_bin

IDS = {"identities": [{"name": "agent-a", "tenant": "acme", "agent": "coder",
                       "labels": ["team=payments"], "sources": ["127.0.0.2/32"]}],
       "policies": [{"name": "readonly", "rules": [{"host": "*", "methods": ["GET", "HEAD"]}]}]}


def check(text):
    return subprocess.run([sluice_bin(), "check", "-c", "-"], input=text, capture_output=True,
                          text=True)


# ---- authentication ------------------------------------------------------------

@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-wrong-token-00", "Basic " + ADMIN_TOKEN,
                                  "Bearer " + ADMIN_TOKEN[:-1], "Bearer " + ADMIN_TOKEN + "x",
                                  "Bearer"])
def test_unauthorized_calls_get_401_and_change_nothing(sluice, auth):
    s = sluice(IDS)
    headers = {"Authorization": auth} if auth else {}
    for method, path, body in [("GET", "/v1/health", None), ("GET", "/v1/policy", None),
                               ("POST", "/v1/kill", {"identity": None, "on": True}),
                               ("POST", "/v1/identities/agent-a/deny", {"host": "upstream.test"})]:
        r = admin_request(s.admin_port, method, path, body, token=None, headers=headers)
        assert r.status == 401, (method, path, r)
        assert r.json()["error"] == "unauthorized"
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert s.get("http://upstream.test/still-open").status == 200
    assert s.audit("admin") == []
    assert ADMIN_TOKEN not in s.stderr()


def test_duplicate_authorization_header_is_refused(sluice):
    s = sluice()
    sock = socket.create_connection(("127.0.0.1", s.admin_port))
    sock.sendall(("GET /v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % (ADMIN_TOKEN, ADMIN_TOKEN)).encode())
    data = b""
    while True:
        d = sock.recv(65536)
        if not d:
            break
        data += d
    sock.close()
    assert data.startswith(b"HTTP/1.1 401 ")


def test_health_and_policy(sluice):
    s = sluice(IDS)
    h = s.admin_call("GET", "/v1/health")
    assert h.status == 200 and h.json()["status"] == "ok"
    p = s.admin_call("GET", "/v1/policy").json()
    names = [i["name"] for i in p["identities"]]
    assert names == ["agent-a", "default"]
    a = p["identities"][0]
    assert (a["tenant"], a["agent"], a["labels"], a["policy"]) == ("acme", "coder", ["team=payments"], "default")


@pytest.mark.parametrize("method,path,body,status,error", [
    ("GET", "/v1/nope", None, 404, "not_found"),
    ("GET", "/v2/health", None, 404, "not_found"),
    ("POST", "/v1/health", None, 405, "method_not_allowed"),
    ("GET", "/v1/kill", None, 405, "method_not_allowed"),
    ("GET", "/v1/health?x=1", None, 400, "bad_request"),
    ("POST", "/v1/identities/nobody/allow", {"host": "a.test"}, 404, "unknown_identity"),
    ("POST", "/v1/identities/Agent-A/allow", {"host": "a.test"}, 404, "not_found"),
    ("POST", "/v1/identities/agent-a/allow", {"host": "a..test"}, 400, "bad_pattern"),
    ("POST", "/v1/identities/agent-a/allow", {"hots": "a.test"}, 400, "bad_body"),
    ("POST", "/v1/identities/agent-a/allow", {"host": 7}, 400, "bad_body"),
    ("POST", "/v1/identities/agent-a/allow", [], 400, "bad_body"),
    ("DELETE", "/v1/identities/agent-a/deny", {"host": "never-added.test"}, 404, "not_present"),
    ("PUT", "/v1/identities/agent-a/policy", {"policy": "no-such-policy"}, 400, "refused"),
    ("POST", "/v1/kill", {"on": True}, 400, "bad_body"),
    ("POST", "/v1/kill", {"identity": "nobody", "on": True}, 404, "unknown_identity"),
    ("POST", "/v1/kill", {"identity": None, "on": "yes"}, 400, "bad_body"),
    ("POST", "/v1/approvals/0123abcd", {"approve": True}, 404, "not_waiting"),
    ("GET", "/v1/health", {"x": 1}, 400, "bad_request"),
])
def test_bad_requests_are_4xx_json(sluice, method, path, body, status, error):
    s = sluice(IDS)
    r = s.admin_call(method, path, body)
    assert r.status == status, r
    j = r.json()
    assert j["error"] == error and isinstance(j["detail"], str) and j["detail"]
    assert s.audit("admin") == []


def test_duplicate_json_keys_are_refused(sluice):
    s = sluice(IDS)
    r = s.admin_call("POST", "/v1/kill", raw_body='{"identity": null, "on": false, "on": true}')
    assert r.status == 400 and "duplicate" in r.json()["detail"]
    assert s.admin_call("GET", "/v1/policy").json()["killed"] is False


def test_body_limit_and_chunked(sluice):
    s = sluice(IDS)
    r = s.admin_call("POST", "/v1/identities/agent-a/allow",
                     raw_body='{"host": "a.test", "x": "%s"}' % ("y" * 70000))
    assert r.status == 413
    sock = socket.create_connection(("127.0.0.1", s.admin_port))
    sock.sendall(("POST /v1/kill HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n" % ADMIN_TOKEN).encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 411 ")
    sock.close()


# ---- configuration -----------------------------------------------------------------

def test_admin_refuses_non_loopback_bind_by_default():
    r = check('admin: { listen: "0.0.0.0:18889", token_env: T }\n')
    assert r.returncode == 1 and "not a loopback address" in r.stderr
    r = check('admin: { listen: "10.0.0.1:18889", token_env: T }\n')
    assert r.returncode == 1 and "allow_remote" in r.stderr
    r = check('admin: { listen: "0.0.0.0:18889", token_env: T, allow_remote: true }\n')
    assert r.returncode == 0, r.stderr
    for ok in ['admin: { listen: "127.0.0.1:18889", token_env: T }\n',
               'admin: { listen: "[::1]:18889", token_env: T }\n',
               'admin: { listen: "unix:/run/sluice/admin.sock", token_file: /etc/sluice/t }\n']:
        assert check(ok).returncode == 0, ok


def test_admin_must_not_share_a_proxy_listen_address():
    r = check('listen: ["127.0.0.1:18888"]\nadmin: { listen: "127.0.0.1:18888", token_env: T }\n')
    assert r.returncode == 1 and "also the proxy listen address" in r.stderr
    # the order of the keys in the file does not matter
    r = check('admin: { listen: "0.0.0.0:18890", token_env: T, allow_remote: true }\n'
              'listen: ["127.0.0.1:18890"]\n')
    assert r.returncode == 1 and "also the proxy listen address" in r.stderr


def test_admin_needs_exactly_one_token_source():
    assert "token" in check('admin: { listen: "127.0.0.1:18889" }\n').stderr
    r = check('admin: { listen: "127.0.0.1:18889", token_env: T, token_file: /x }\n')
    assert r.returncode == 1


def test_refuses_to_start_without_the_token(sluice_unstarted):
    s = sluice_unstarted(env={"SLUICE_ADMIN_TOKEN": None})
    assert s.start(expect_fail=True) == 1
    assert "SLUICE_ADMIN_TOKEN" in s.stderr() and "not set" in s.stderr()
    s = sluice_unstarted(env={"SLUICE_ADMIN_TOKEN": "short"})
    assert s.start(expect_fail=True) == 1
    assert "shorter than" in s.stderr()


def test_token_file_mode_is_enforced(sluice_unstarted, sluice, tmp_path):
    tf = tmp_path / "admin.token"
    tf.write_text("file-token-0123456789abcdef\n")
    os.chmod(tf, 0o644)
    over = {"admin": {"token_env": None, "token_file": str(tf)}}
    s = sluice_unstarted(over, env={"SLUICE_ADMIN_TOKEN": None})
    assert s.start(expect_fail=True) == 1
    assert "0644" in s.stderr() and "chmod 600" in s.stderr()
    os.chmod(tf, 0o600)
    s2 = sluice(over, name="tokfile", env={"SLUICE_ADMIN_TOKEN": None})
    assert s2.admin_call("GET", "/v1/health", token="file-token-0123456789abcdef").status == 200
    assert s2.admin_call("GET", "/v1/health").status == 401


def test_unix_socket_admin(sluice, tmp_path):
    path = str(tmp_path / "admin.sock")
    s = sluice(lambda s: {"admin": {"listen": "unix:" + path}})
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and (st.st_mode & 0o077) == 0
    e = dict(os.environ, SLUICE_ADMIN_TOKEN=ADMIN_TOKEN)
    r = subprocess.run([sluice_bin(), "admin", "--socket", path, "health"], capture_output=True,
                       text=True, env=e)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"
    r = subprocess.run([sluice_bin(), "admin", "-c", str(s.config_path), "kill", "--all"],
                       capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    assert s.get("http://upstream.test/").blocked == "policy.kill-switch"
    s.stop()
    assert not os.path.exists(path)


# ---- audit -------------------------------------------------------------------------

def test_every_admin_change_is_an_audit_event(sluice):
    s = sluice(IDS)
    calls = [
        ("POST", "/v1/identities/agent-a/allow", {"host": "upstream.test"}, "allow-list"),
        ("DELETE", "/v1/identities/agent-a/allow", {"host": "upstream.test"}, "allow-list"),
        ("POST", "/v1/identities/default/deny", {"host": "bad.test"}, "deny-list"),
        ("DELETE", "/v1/identities/default/deny", {"host": "bad.test"}, "deny-list"),
        ("PUT", "/v1/identities/agent-a/policy", {"policy": "readonly"}, "set-policy"),
        ("PUT", "/v1/identities/agent-a/policy", {"policy": None}, "set-policy"),
        ("POST", "/v1/kill", {"identity": "agent-a", "on": True}, "kill-switch-on"),
        ("POST", "/v1/kill", {"identity": None, "on": False}, "kill-switch-off"),
    ]
    for m, p, b, _ in calls:
        r = s.admin_call(m, p, b, headers={"X-Sluice-Actor": "ops@example <alice>"})
        assert r.status == 200, (m, p, r)
        assert r.json()["ok"] is True
    ev = s.audit("admin", wait_for=lambda l: len(l) >= len(calls))
    assert [e["action"] for e in ev] == [c[3] for c in calls]
    assert all(e["actor"] == "ops@example__alice_" for e in ev)
    assert ev[0]["identity"] == "agent-a" and "upstream.test" in ev[0]["detail"]
    assert ev[7]["identity"] is None
    # without the header the actor is "admin-api"
    s.admin_call("POST", "/v1/kill", {"identity": None, "on": False})
    assert s.audit("admin", wait_for=lambda l: len(l) > len(calls))[-1]["actor"] == "admin-api"


# ---- CLI ---------------------------------------------------------------------------

def test_cli_verbs(sluice):
    s = sluice(IDS)
    r = s.cli("health")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"
    r = s.cli("deny", "agent-a", "upstream.test")
    assert r.returncode == 0, r.stderr
    assert s.get("http://upstream.test/", source="127.0.0.2").blocked == "policy.deny"
    assert s.get("http://upstream.test/").status == 200
    r = s.cli("policy", "agent-a")
    assert r.returncode == 0 and json.loads(r.stdout)["runtime_deny"] == ["upstream.test"]
    assert s.cli("undeny", "agent-a", "upstream.test").returncode == 0
    assert s.cli("undeny", "agent-a", "upstream.test").returncode == 1
    assert s.cli("set-policy", "agent-a", "readonly").returncode == 0
    assert s.req("POST", "http://upstream.test/", body=b"x", source="127.0.0.2").blocked == "policy.rule"
    assert s.cli("set-policy", "agent-a", "--configured").returncode == 0
    assert s.req("POST", "http://upstream.test/", body=b"x", source="127.0.0.2").status == 200
    assert s.cli("kill", "--all").returncode == 0
    assert s.get("http://upstream.test/").blocked == "policy.kill-switch"
    assert s.cli("unkill", "--all").returncode == 0
    assert s.get("http://upstream.test/").status == 200
    r = s.cli("approvals")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    assert s.cli("approve", "00000000000000000000").returncode == 1
    assert s.cli("allow", "Bad Name", "x.test").returncode == 2
    assert s.cli("frobnicate").returncode == 2
    assert s.cli("health", token="wrong-token-wrong-token").returncode == 1
    ev = s.audit("admin", wait_for=lambda l: len(l) >= 6)
    assert len(ev) == 6 and all(e["actor"] == "cli:tester" for e in ev)
    h = subprocess.run([sluice_bin(), "admin", "--help"], capture_output=True, text=True)
    assert h.returncode == 0
    for verb in ["health", "policy", "allow", "unallow", "deny", "undeny", "set-policy", "kill",
                 "unkill", "approvals", "approve", "reject"]:
        assert "  " + verb in h.stdout
