"""Credential injection inside an intercepted HTTPS tunnel (issue 6): the
upstream sees the real value over TLS, the agent only ever holds the
placeholder, and an echo of the value comes back redacted."""

import json
import os
import subprocess

import tlshelpers as th

REAL = "ghp-test-REALVALUE-5d4c3b2a19f8e7d6c5b4"
PH = "PH-github-placeholder-4242"


def curl(s, *args, env=None):
    cmd = ["curl", "-sS", "--max-time", "20", "--proxy", s.proxy, "--cacert", s.ca_path, *args]
    return subprocess.run(cmd, capture_output=True, timeout=30, env=env)


def test_injection_and_echo_redaction_over_https(sluice_factory, pki, upstreams, client_env,
                                                 tmp_path):
    key = tmp_path / "gh.key"
    key.write_text(REAL + "\n")
    cfg = th.base_config(pki, upstreams)
    cfg["secrets"] = [{"name": "github", "source": {"file": str(key)}, "placeholder": PH,
                       "hosts": ["secure.test"]}]
    s = sluice_factory(cfg)
    p = curl(s, "-H", "Authorization: token " + PH, "https://secure.test/echo", env=client_env)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    # The echo carries what the upstream received: the real value, which
    # sluice redacts back to the placeholder on the way to the agent.
    assert REAL not in out
    hdrs = {k.lower(): v for k, v in json.loads(out)["headers"]}
    assert hdrs["authorization"] == "token " + PH

    # Out of scope inside a tunnel: refused like in plain HTTP.
    p = curl(s, "-H", "X-Leak: " + PH, "-o", "/dev/null", "-w", "%{http_code}",
             "https://expired.test/", env=client_env)
    assert p.stdout.decode() == "403", p.stderr
    logs = "".join(open(os.path.join(s.dir, f), errors="replace").read()
                   for f in os.listdir(s.dir) if f.endswith((".log", ".jsonl", ".stderr")))
    assert REAL not in logs
