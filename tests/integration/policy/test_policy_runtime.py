"""Runtime changes through the admin API: host lists, policy swap, kill
switch (global and per identity), without restart and without failing
requests in flight."""

import http.client
import signal
import threading
import time

from policy_harness import proxy_request

IDS = {"policy": {"allow": ["a.test", "slow.test"]},
       "policies": [{"name": "readonly", "rules": [{"host": "*", "methods": ["GET"]}]}],
       "identities": [{"name": "agent-a", "sources": ["127.0.0.2/32"]}]}


def test_host_add_and_remove_without_restart(sluice, upstream):
    s = sluice(IDS)
    pid = s.proc.pid
    assert s.get("http://b.test/").blocked == "policy.not-allowed"
    assert s.admin_call("POST", "/v1/identities/default/allow", {"host": "b.test"}).status == 200
    assert s.get("http://b.test/1").status == 200
    # only that identity changed
    assert s.get("http://b.test/", source="127.0.0.2").blocked == "policy.not-allowed"
    assert s.admin_call("DELETE", "/v1/identities/default/allow", {"host": "b.test"}).status == 200
    assert s.get("http://b.test/2").blocked == "policy.not-allowed"
    assert s.admin_call("POST", "/v1/identities/default/deny", {"host": "a.test"}).status == 200
    assert s.get("http://a.test/3").blocked == "policy.deny"
    # patterns from the config file change with the file, not here
    assert s.admin_call("DELETE", "/v1/identities/default/allow", {"host": "a.test"}).status == 404
    # runtime changes survive a reload
    s.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert s.get("http://a.test/4").blocked == "policy.deny"
    assert s.admin_call("DELETE", "/v1/identities/default/deny", {"host": "a.test"}).status == 200
    assert s.get("http://a.test/5").status == 200
    assert s.proc.pid == pid and s.proc.poll() is None


def test_policy_swap(sluice):
    s = sluice(IDS)
    assert s.req("POST", "http://a.test/", body=b"x", source="127.0.0.2").status == 200
    r = s.admin_call("PUT", "/v1/identities/agent-a/policy", {"policy": "readonly"})
    assert r.status == 200 and r.json()["identity"]["policy"] == "readonly"
    assert s.req("POST", "http://a.test/", body=b"x", source="127.0.0.2").blocked == "policy.rule"
    assert s.req("POST", "http://a.test/", body=b"x").status == 200
    assert s.admin_call("PUT", "/v1/identities/agent-a/policy", {"policy": None}).json()["identity"]["policy"] == "default"
    assert s.req("POST", "http://a.test/", body=b"x", source="127.0.0.2").status == 200


def slow_in_background(s, ms, **kw):
    out = {}
    t = threading.Thread(target=lambda: out.update(r=s.get("http://slow.test/slow/%d" % ms, **kw)))
    t.start()
    return t, out


def test_global_kill_switch(sluice, upstream):
    s = sluice(IDS)
    t, out = slow_in_background(s, 1500)
    deadline = time.monotonic() + 5
    while not upstream.seen("/slow/1500") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert s.admin_call("POST", "/v1/kill", {"identity": None, "on": True}).status == 200
    for src in (None, "127.0.0.2"):
        r = s.get("http://a.test/k", source=src)
        assert r.status == 403 and r.blocked == "policy.kill-switch"
    assert s.admin_call("GET", "/v1/policy").json()["killed"] is True
    t.join(10)
    assert out["r"].status == 200, "in-flight request must finish under the old policy"
    assert s.admin_call("POST", "/v1/kill", {"identity": None, "on": False}).status == 200
    assert s.get("http://a.test/k2").status == 200
    assert upstream.seen("/k") == []


def test_kill_switch_per_identity(sluice, upstream):
    s = sluice(IDS)
    t, out = slow_in_background(s, 1000, source="127.0.0.2")
    time.sleep(0.3)
    assert s.admin_call("POST", "/v1/kill", {"identity": "agent-a", "on": True}).status == 200
    assert s.get("http://a.test/pk", source="127.0.0.2").blocked == "policy.kill-switch"
    assert s.get("http://a.test/pk2").status == 200
    t.join(10)
    assert out["r"].status == 200
    ids = {i["name"]: i for i in s.admin_call("GET", "/v1/policy").json()["identities"]}
    assert ids["agent-a"]["killed"] is True and ids["default"]["killed"] is False
    assert s.admin_call("POST", "/v1/kill", {"identity": "agent-a", "on": False}).status == 200
    assert s.get("http://a.test/pk3", source="127.0.0.2").status == 200


def test_kill_switch_refuses_connect(sluice):
    import socket
    s = sluice(IDS)
    s.admin_call("POST", "/v1/kill", {"identity": None, "on": True})
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"CONNECT a.test:80 HTTP/1.1\r\nHost: a.test:80\r\n\r\n")
    data = c.recv(4096)
    c.close()
    assert data.startswith(b"HTTP/1.1 403") and b"policy.kill-switch" in data


def test_policy_changes_under_load(sluice, upstream):
    """4 clients loop over keep-alive connections (plus slow requests in
    flight) while the allow list flips 20 times: no allowed request fails."""
    s = sluice(IDS)
    stop = threading.Event()
    errors, counts = [], [0, 0, 0, 0, 0]

    def worker(i):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
        n = 0
        while not stop.is_set():
            path = "/slow/150" if i == 4 else "/w%d/%d" % (i, n)
            try:
                conn.request("GET", "http://%s%s" % ("slow.test" if i == 4 else "a.test", path))
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    errors.append((i, n, r.status, body[:200]))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
            except Exception as e:
                errors.append((i, n, repr(e)))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
            counts[i] += 1
            n += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    try:
        for k in range(20):
            verb = "POST" if k % 2 == 0 else "DELETE"
            r = s.admin_call(verb, "/v1/identities/default/allow", {"host": "b.test"})
            assert r.status == 200, r
            want = 200 if verb == "POST" else 403
            assert s.get("http://b.test/flip%d" % k).status == want
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert min(counts[:4]) > 5 and counts[4] > 2, counts
    gen = s.admin_call("GET", "/v1/health").json()["generation"]
    assert gen >= 21
    assert len(s.audit("admin", wait_for=lambda l: len(l) >= 20)) == 20
