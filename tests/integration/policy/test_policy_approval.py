"""Approval gate: writes to marked hosts wait for POST /v1/approvals/{id};
granted, denied and timed out; reads pass at once."""

import threading
import time

import pytest

GATED = {"policy": {"approval": {"hosts": ["gated.test"], "timeout": "2s"}}}


def in_background(fn):
    out = {}

    def run():
        try:
            out["resp"] = fn()
        except Exception as e:  # surfaced by the assertions on out
            out["exc"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, out


def wait_held(s, path, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = s.admin_call("GET", "/v1/approvals").json()
        for h in held:
            if h["path"] == path:
                return h
        time.sleep(0.05)
    raise AssertionError("request %s never appeared in /v1/approvals" % path)


def test_reads_and_other_hosts_pass_at_once(sluice, upstream):
    s = sluice(GATED)
    t0 = time.monotonic()
    assert s.get("http://gated.test/read").status == 200
    assert s.req("POST", "http://other.test/write", body=b"x").status == 200
    assert time.monotonic() - t0 < 1.5
    assert s.admin_call("GET", "/v1/approvals").json() == []


def test_approval_granted(sluice, upstream):
    s = sluice(GATED)
    t, out = in_background(lambda: s.req("POST", "http://gated.test/deploy?token=abc", body=b"go"))
    h = wait_held(s, "/deploy?token=*")
    assert (h["method"], h["host"], h["identity"]) == ("POST", "gated.test", "default")
    assert h["timeout_ms"] == 2000
    assert upstream.seen("/deploy?token=abc") == []
    r = s.admin_call("POST", "/v1/approvals/" + h["id"], {"approve": True},
                     headers={"X-Sluice-Actor": "alice"})
    assert r.status == 200 and r.json()["approved"] is True
    t.join(10)
    assert out["resp"].status == 200, out
    assert len(upstream.seen("/deploy?token=abc")) == 1
    assert s.admin_call("POST", "/v1/approvals/" + h["id"], {"approve": True}).status == 404
    ev = s.audit("admin", wait_for=lambda l: l)
    assert ev[-1]["action"] == "approve" and ev[-1]["actor"] == "alice" and ev[-1]["detail"] == h["id"]


def test_approval_denied(sluice, upstream):
    s = sluice(GATED)
    t, out = in_background(lambda: s.req("DELETE", "http://gated.test/repo"))
    h = wait_held(s, "/repo")
    assert s.admin_call("POST", "/v1/approvals/" + h["id"], {"approve": False}).status == 200
    t.join(10)
    r = out["resp"]
    assert r.status == 403 and r.blocked == "policy.approval-denied"
    assert upstream.seen("/repo") == []
    assert s.audit("admin", wait_for=lambda l: l)[-1]["action"] == "deny"


def test_approval_timed_out(sluice, upstream):
    s = sluice(GATED)
    t0 = time.monotonic()
    t, out = in_background(lambda: s.req("PUT", "http://gated.test/late", body=b"x"))
    h = wait_held(s, "/late")
    t.join(10)
    took = time.monotonic() - t0
    r = out["resp"]
    assert r.status == 403 and r.blocked == "policy.approval-timeout"
    assert 1.8 <= took < 5, took
    assert upstream.seen("/late") == []
    assert s.admin_call("GET", "/v1/approvals").json() == []
    assert s.admin_call("POST", "/v1/approvals/" + h["id"], {"approve": True}).status == 404


def test_cli_approve_and_reject(sluice, upstream):
    s = sluice(GATED)
    t1, o1 = in_background(lambda: s.req("PATCH", "http://gated.test/c1", body=b"x"))
    h1 = wait_held(s, "/c1")
    t2, o2 = in_background(lambda: s.req("POST", "http://gated.test/c2", body=b"x"))
    h2 = wait_held(s, "/c2")
    assert s.cli("approve", h1["id"]).returncode == 0
    assert s.cli("reject", h2["id"]).returncode == 0
    t1.join(10)
    t2.join(10)
    assert o1["resp"].status == 200
    assert o2["resp"].blocked == "policy.approval-denied"
