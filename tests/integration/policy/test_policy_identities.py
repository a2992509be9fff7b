"""Identities by each method: listener, source CIDR, Proxy-Authorization;
all conditions must hold, first match wins, unknown clients get the default
policy or 407 with refuse_unknown."""

import socket

import pytest

ONLY_A = {"name": "only-a", "allow": ["a.test"]}


def ids(*identities, **extra):
    def cfg(s):
        out = {"policies": [ONLY_A, {"name": "only-b", "allow": ["b.test"]}],
               "identities": [dict(i, listen=[x.replace("P1", str(s.ports[1])) for x in i["listen"]])
                              if "listen" in i else i for i in identities]}
        out.update(extra)
        return out
    return cfg


def audit_identity(s, path):
    ev = s.audit(wait_for=lambda l: any(e.get("target", e.get("path", "")) == path or path in str(e) for e in l))
    return [e.get("identity") for e in ev if path in str(e) and e.get("event") != "admin"]


def test_identity_by_listener(sluice, upstream):
    s = sluice(ids({"name": "second-door", "listen": ["127.0.0.1:P1"], "policy": "only-a"}))
    assert s.get("http://b.test/l1").status == 200
    r = s.get("http://b.test/l2", port=s.ports[1])
    assert r.status == 403 and r.blocked == "policy.not-allowed"
    assert s.get("http://a.test/l3", port=s.ports[1]).status == 200
    assert upstream.seen("/l2") == []
    assert audit_identity(s, "/l1") == ["default"]
    assert audit_identity(s, "/l3") == ["second-door"]


def test_identity_by_source_cidr(sluice, upstream):
    s = sluice(ids({"name": "sandbox-2", "sources": ["127.0.0.2/32"], "policy": "only-a"}))
    assert s.get("http://b.test/s1").status == 200
    r = s.get("http://b.test/s2", source="127.0.0.2")
    assert r.status == 403 and r.blocked == "policy.not-allowed"
    assert s.get("http://a.test/s3", source="127.0.0.2").status == 200
    assert upstream.seen("/s2") == []
    assert audit_identity(s, "/s3") == ["sandbox-2"]


def test_all_conditions_must_hold(sluice):
    s = sluice(ids({"name": "both", "listen": ["127.0.0.1:P1"], "sources": ["127.0.0.2/32"],
                    "policy": "only-a"}))
    # listener alone, source alone: not this identity
    assert s.get("http://b.test/", port=s.ports[1]).status == 200
    assert s.get("http://b.test/", source="127.0.0.2").status == 200
    assert s.get("http://b.test/", port=s.ports[1], source="127.0.0.2").blocked == "policy.not-allowed"


def test_first_match_wins(sluice):
    s = sluice(ids({"name": "first", "sources": ["127.0.0.0/8"], "policy": "only-a"},
                   {"name": "second", "sources": ["127.0.0.2/32"], "policy": "only-b"}))
    assert s.get("http://a.test/", source="127.0.0.2").status == 200
    assert s.get("http://b.test/", source="127.0.0.2").blocked == "policy.not-allowed"


AUTH = {"name": "sandbox-7", "proxy_auth": {"user": "sandbox-7", "password_env": "SB7_PASSWORD"},
        "policy": "only-a"}
ENV = {"SB7_PASSWORD": "s3cret-pass-7"}


@pytest.mark.parametrize("refuse_unknown", [True, False])
def test_identity_by_proxy_auth(sluice, upstream, refuse_unknown):
    s = sluice(ids(AUTH, refuse_unknown=refuse_unknown), env=ENV)
    ok = s.get("http://a.test/p1", auth=("sandbox-7", "s3cret-pass-7"))
    assert ok.status == 200
    # the credential is checked, then stripped
    seen = upstream.seen("/p1")
    assert len(seen) == 1 and not any(k.lower() == "proxy-authorization" for k in seen[0]["headers"])
    r = s.get("http://b.test/p2", auth=("sandbox-7", "s3cret-pass-7"))
    assert r.blocked == "policy.not-allowed"
    for bad in [("sandbox-7", "wrong"), ("nobody", "s3cret-pass-7"), ("sandbox-7", "")]:
        r = s.get("http://a.test/p3", auth=bad)
        assert r.status == 407 and r.blocked == "identity.refused", bad
        assert "proxy-authenticate" in r.headers
    r = s.get("http://a.test/p4", headers={"Proxy-Authorization": "Basic !!notbase64"})
    assert r.status == 407
    missing = s.get("http://b.test/p5")
    if refuse_unknown:
        assert missing.status == 407 and missing.blocked == "identity.refused"
    else:
        assert missing.status == 200  # default policy: everything public
    assert upstream.seen("/p3") == [] and upstream.seen("/p4") == []
    assert "s3cret-pass-7" not in s.stderr()
    assert "s3cret-pass-7" not in s.audit_path.read_text()


def test_refuse_unknown_without_proxy_auth(sluice, upstream):
    s = sluice(ids({"name": "known", "sources": ["127.0.0.2/32"]}, refuse_unknown=True))
    assert s.get("http://a.test/k", source="127.0.0.2").status == 200
    r = s.get("http://a.test/u")
    assert r.status == 407 and r.blocked == "identity.refused"
    assert upstream.seen("/u") == []


def test_connect_target_is_checked_with_the_identity(sluice):
    s = sluice(ids({"name": "sandbox-2", "sources": ["127.0.0.2/32"], "policy": "only-a"}))

    def connect(host, source=None):
        c = socket.create_connection(("127.0.0.1", s.port), source_address=(source, 0) if source else None)
        c.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host)).encode())
        data = c.recv(4096)
        c.close()
        return data

    assert connect("b.test:80", "127.0.0.2").startswith(b"HTTP/1.1 403")
    assert connect("a.test:80", "127.0.0.2").startswith(b"HTTP/1.1 200")
    assert connect("b.test:80").startswith(b"HTTP/1.1 200")
