"""Credential injection through the real proxy (issue 6): the upstream sees the
real value, the agent never does, and every log stays clean."""

import json
import os
import signal
import time

import requests

from upstream import Upstream  # noqa: F401  (fixture type)

REAL = "sk-test-REALVALUE-7f3a9c1e5b2d4680aa11"
ROTATED = "sk-test-ROTATED-0c9d8e7f6a5b4c3d2e1f"
PH = "PH-openai-placeholder-0123"


def secrets_config(tmp_path, **extra):
    key = tmp_path / "openai.key"
    if not key.exists():
        key.write_text(REAL + "\n")
    s = {"name": "openai", "source": {"file": str(key)}, "placeholder": PH,
         "hosts": ["upstream.test"]}
    s.update(extra)
    return {"secrets": [s],
            "routes": [{"host": "upstream.test", "to": None}, {"host": "other.test", "to": None}]}


def start(sluice_factory, upstream, tmp_path, **extra):
    cfg = secrets_config(tmp_path, **extra)
    for r in cfg["routes"]:
        r["to"] = upstream.addr
    return sluice_factory(cfg)


def proxies(s):
    return {"http": "http://127.0.0.1:%d" % s.port}


def all_logs(s, tmp_path):
    text = s.stderr() + s.audit_text()
    for p in tmp_path.iterdir():
        if p.suffix in (".stderr", ".stdout", ".jsonl"):
            text += p.read_text(errors="replace")
    return text


def test_placeholder_replaced_upstream_sees_real_value(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path)
    r = requests.get("http://upstream.test/fixed?n=3", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 200
    req = upstream.wait_requests(1)[0]
    assert req.header("authorization") == "Bearer " + REAL
    ev = s.audit(1)[0]
    assert ev["secrets"] == ["openai@header:Authorization"]
    assert REAL not in all_logs(s, tmp_path)


def test_echo_is_redacted_back_to_placeholder(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path)
    # /info answers with the request it received, injected header included
    r = requests.get("http://upstream.test/info", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 200
    assert REAL not in r.text
    assert PH in r.text
    assert json.loads(r.text)["method"] == "GET"


def test_placeholder_out_of_scope_host_is_refused(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path)
    r = requests.get("http://other.test/fixed?n=1", proxies=proxies(s),
                     headers={"X-Exfil": PH})
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "secret.out-of-scope"
    assert r.json()["rule"] == "secret.out-of-scope"
    time.sleep(0.2)
    assert upstream.snapshot()["requests"] == []
    ev = s.audit(1)[0]
    assert ev["rule"] == "secret.out-of-scope" and ev["severity"] == "high"


def test_placeholder_out_of_scope_method_is_refused(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path, methods=["GET"])
    r = requests.post("http://upstream.test/echo", proxies=proxies(s), data=b"x",
                      headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 403
    assert r.json()["rule"] == "secret.out-of-scope"


def test_real_value_from_sandbox_is_refused(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path)
    r = requests.get("http://upstream.test/fixed?n=1&k=" + REAL, proxies=proxies(s))
    assert r.status_code == 403
    assert r.json()["rule"] == "secret.real-value-from-sandbox"
    assert REAL not in r.text
    assert REAL not in all_logs(s, tmp_path)


def test_require_refuses_requests_without_placeholder(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path, require=True)
    r = requests.get("http://upstream.test/fixed?n=1", proxies=proxies(s),
                     headers={"Authorization": "Bearer my-own-key-123456"})
    assert r.status_code == 403
    assert r.json()["rule"] == "secret.required-missing"


def test_inject_template_when_header_missing(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path,
              inject={"header": "Authorization", "template": "Bearer {secret}"})
    r = requests.get("http://upstream.test/fixed?n=1", proxies=proxies(s))
    assert r.status_code == 200
    assert upstream.wait_requests(1)[0].header("authorization") == "Bearer " + REAL


def test_body_replacement_content_length_and_chunked(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path, replace_in=["headers", "body"])
    body = ('{"key": "%s", "pad": "%s"}' % (PH, "x" * 5000)).encode()
    r = requests.post("http://upstream.test/info", proxies=proxies(s), data=body)
    assert r.status_code == 200
    import hashlib
    want = body.replace(PH.encode(), REAL.encode())
    got = json.loads(r.text)
    assert got["body_len"] == len(want)
    assert got["body_sha256"] == hashlib.sha256(want).hexdigest()

    def gen():
        yield body[:17]
        yield body[17:]
    r = requests.post("http://upstream.test/info", proxies=proxies(s), data=gen())
    got = json.loads(r.text)
    assert got["body_sha256"] == hashlib.sha256(want).hexdigest()


def test_compressed_body_refused_when_body_replacement_on(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path, replace_in=["headers", "body"])
    r = requests.post("http://upstream.test/echo", proxies=proxies(s), data=b"\x1f\x8b\x08compressed",
                      headers={"Content-Encoding": "gzip", "Authorization": "Bearer " + PH})
    assert r.status_code == 403
    assert r.json()["rule"] == "secret.body-encoded"


def test_rotation_on_reload(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path)
    requests.get("http://upstream.test/fixed?n=1", proxies=proxies(s),
                 headers={"Authorization": "Bearer " + PH})
    assert upstream.wait_requests(1)[0].header("authorization") == "Bearer " + REAL
    (tmp_path / "openai.key").write_text(ROTATED + "\n")
    s.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    seen = None
    while time.monotonic() < deadline:
        upstream.reset()
        requests.get("http://upstream.test/fixed?n=1", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
        seen = upstream.wait_requests(1)[0].header("authorization")
        if seen == "Bearer " + ROTATED:
            break
        time.sleep(0.1)
    assert seen == "Bearer " + ROTATED
    logs = all_logs(s, tmp_path)
    assert REAL not in logs and ROTATED not in logs


def test_missing_source_is_a_startup_error(tmp_path):
    import subprocess
    from sluice_harness import sluice_bin
    cfg = tmp_path / "c.yaml"
    cfg.write_text('listen: ["127.0.0.1:1"]\nsecrets:\n  - name: gone\n    source: { env: SLUICE_TEST_UNSET_VAR }\n'
                   '    hosts: ["a.example"]\n')
    env = dict(os.environ)
    env.pop("SLUICE_TEST_UNSET_VAR", None)
    p = subprocess.run([sluice_bin(), "run", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=20, env=env)
    assert p.returncode == 1
    assert "gone" in p.stderr and "SLUICE_TEST_UNSET_VAR" in p.stderr


def test_placeholder_out_of_scope_path_is_refused(sluice_factory, upstream, tmp_path):
    s = start(sluice_factory, upstream, tmp_path, paths=["/v1/"])
    r = requests.get("http://upstream.test/fixed?n=1", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 403
    assert r.json()["rule"] == "secret.out-of-scope"
    r = requests.get("http://upstream.test/v1/../fixed", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code in (400, 403)


def test_placeholder_out_of_scope_identity_is_refused(sluice_factory, upstream, tmp_path):
    cfg = secrets_config(tmp_path, identities=["trusted-agent"])
    for r in cfg["routes"]:
        r["to"] = upstream.addr
    cfg["identities"] = [{"name": "trusted-agent", "sources": ["10.99.0.0/16"]}]
    s = sluice_factory(cfg)
    # This client is 127.0.0.1: the default identity, not trusted-agent.
    r = requests.get("http://upstream.test/fixed?n=1", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 403
    assert r.json()["rule"] == "secret.out-of-scope"
    assert "identity" in r.json()["reason"]


def test_compressed_echo_is_never_passed_unchecked(sluice_factory, upstream, tmp_path):
    # A compressed response to a request that carried a credential cannot be
    # checked for an echo of it: refused, never delivered unchecked.
    cfg = secrets_config(tmp_path)
    for r in cfg["routes"]:
        r["to"] = upstream.addr
    cfg["inspect"] = {"enabled": False}
    s = sluice_factory(cfg)
    r = requests.get("http://upstream.test/gzip", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 502
    assert r.headers["X-Sluice-Error"] == "secret.response-encoded"
    assert REAL.encode() not in r.content


def test_compressed_response_refused_when_inspecting(sluice_factory, upstream, tmp_path):
    # Inspection decodes the response for its scan, but echo redaction would
    # have to rewrite the compressed bytes: still refused, never delivered.
    s = start(sluice_factory, upstream, tmp_path)
    r = requests.get("http://upstream.test/gzip", proxies=proxies(s),
                     headers={"Authorization": "Bearer " + PH})
    assert r.status_code == 502
    assert r.headers["X-Sluice-Error"] == "secret.response-encoded"
    assert REAL.encode() not in r.content
