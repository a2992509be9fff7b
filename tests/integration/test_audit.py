"""Audit trail: one JSON line per request with the documented fields; no query values in clear."""

import time

from helpers import RawConn, curl, request_bytes

U = "http://upstream.test"
FIELDS = ("time", "request_id", "identity", "method", "host", "port", "path", "verdict", "rule",
          "upstream", "status", "bytes_in", "bytes_out", "duration_ms")


def test_audit_line_for_allowed_request(proxy, upstream):
    body = b"q" * 100000
    r = proxy.request("POST", U + "/echo?n=1", data=body, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    # /echo answers with the body; use /fixed for an asymmetric exchange
    r2 = proxy.request("POST", U + "/fixed?n=3000", data=body)
    assert r2.status_code == 200
    lines = proxy.audit(2)
    assert len(lines) == 2, lines
    for ev in lines:
        for f in FIELDS:
            assert f in ev, "audit line lacks %r: %r" % (f, ev)
        assert ev["verdict"] == "allow"
        assert ev["method"] == "POST"
        assert ev["host"] == "upstream.test"
        assert ev["port"] == 80
        assert ev["status"] == 200
        assert ev["upstream"] == upstream.addr
        assert isinstance(ev["duration_ms"], (int, float)) and ev["duration_ms"] >= 0
        assert ev["request_id"] and ev["identity"]
        assert isinstance(ev["time"], str) and ev["time"][:2] == "20"
    assert lines[0]["path"].startswith("/echo")
    assert lines[1]["path"].startswith("/fixed")
    ev = lines[1]
    # 100000 bytes went up, 3000 came back; either orientation of in/out is accepted,
    # but the two counters must not be swapped between fields or conflated
    big, small = max(ev["bytes_in"], ev["bytes_out"]), min(ev["bytes_in"], ev["bytes_out"])
    assert big >= 100000, ev
    assert 3000 <= small < 100000, ev
    assert lines[0]["request_id"] != lines[1]["request_id"]


def test_audit_request_id_matches_block_response(proxy):
    r = proxy.get("http://blocked.example/secret-path")
    assert r.status_code == 403
    rid = r.json()["request_id"]
    lines = proxy.audit(1)
    assert len(lines) == 1
    ev = lines[0]
    assert ev["request_id"] == rid
    assert ev["verdict"] == "block"
    assert ev["rule"] == r.json()["rule"]
    assert ev["status"] == 403
    assert ev["upstream"] is None
    assert ev["host"] == "blocked.example"


def test_audit_error_verdict(proxy):
    r = proxy.get("http://nonexistent.invalid/x")
    assert r.status_code == 502
    ev = proxy.audit(1)[0]
    assert ev["verdict"] == "error"
    assert ev["status"] == 502
    assert ev["request_id"] == r.json()["request_id"]


def test_one_audit_line_per_request_on_keepalive_and_pipelining(proxy):
    with RawConn(proxy.port) as c:
        for i in range(3):
            c.send(request_bytes("GET", U + "/fixed?n=%d" % i, [("Host", "upstream.test")]))
            c.read_response()
        c.send(b"".join(request_bytes("GET", U + "/fixed?n=9", [("Host", "upstream.test")]) for _ in range(3)))
        for _ in range(3):
            c.read_response()
    r = curl(proxy.url, "http://blocked.example/")
    assert r.returncode == 0
    time.sleep(0.3)
    lines = proxy.audit(7)
    assert len(lines) == 7, [ln.get("path") for ln in lines]
    assert len({ln["request_id"] for ln in lines}) == 7


def test_audit_line_for_connect(proxy, upstream):
    with RawConn(proxy.port) as c:
        c.send(request_bytes("CONNECT", "upstream.test:%d" % upstream.port, [("Host", "upstream.test")]))
        assert c.read_response("CONNECT").status == 200
        c.send(request_bytes("GET", "/fixed?n=500", [("Host", "upstream.test")]))
        c.read_response()
    proxy.audit(1)
    time.sleep(0.3)
    lines = proxy.audit()
    connects = [ln for ln in lines if ln["method"] == "CONNECT"]
    assert len(connects) == 1, lines
    # requests seen inside a plain tunnel may be audited too, each once (query redacted)
    others = [ln for ln in lines if ln["method"] != "CONNECT"]
    assert len(others) <= 1, lines
    for ln in others:
        assert ln["method"] == "GET" and ln["path"].startswith("/fixed"), ln
        assert "500" not in ln["path"], ln
    ev = connects[0]
    assert ev["host"] == "upstream.test"
    assert ev["port"] == upstream.port
    assert ev["verdict"] == "allow"


def test_query_values_not_in_audit(proxy, upstream):
    secret = "supersecretvalue123"
    r = proxy.get(U + "/fixed?n=5&token=%s&other=%s" % (secret, "anothersecret456"))
    assert r.status_code == 200
    r = proxy.get("http://blocked.example/x?token=%s" % secret)
    assert r.status_code == 403
    proxy.audit(2)
    text = proxy.audit_text()
    assert text.count("\n") >= 2
    assert secret not in text
    assert "anothersecret456" not in text
    # the query still reached the upstream unchanged
    assert upstream.wait_requests(1)[0].target == "/fixed?n=5&token=%s&other=anothersecret456" % secret


def test_query_values_not_in_logs(sluice_factory):
    s = sluice_factory({"log": {"level": "info"}})
    secret = "supersecretvalue123"
    assert s.get(U + "/fixed?n=5&token=%s" % secret).status_code == 200
    assert s.get("http://blocked.example/x?token=%s" % secret).status_code == 403
    s.stop()
    assert secret not in s.stderr()
    assert secret not in s.stdout_path.read_text(errors="replace")


def test_audit_to_stdout(sluice_factory):
    s = sluice_factory({"audit": {"path": "-"}})
    assert s.get(U + "/fixed?n=5").status_code == 200
    time.sleep(0.3)
    s.stop()
    out = [ln for ln in s.stdout_path.read_text().splitlines() if ln.startswith("{")]
    assert len(out) == 1, out


def test_audit_line_for_bad_request(proxy, upstream):
    with RawConn(proxy.port) as c:
        c.send(b"POST http://upstream.test/x HTTP/1.1\r\nHost: upstream.test\r\n"
               b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        r = c.read_response()
        assert r.status == 400
    lines = proxy.audit(1)
    assert len(lines) == 1, lines
    ev = lines[0]
    assert ev["status"] == 400
    assert ev["verdict"] in ("block", "error")
    assert ev["upstream"] is None
    if "request_id" in r.json():
        assert ev["request_id"] == r.json()["request_id"]


def test_audit_time_and_duration(proxy):
    import datetime
    t0 = datetime.datetime.now(datetime.timezone.utc)
    r = proxy.get(U + "/slow?chunks=3&size=10&delay=0.5")
    assert r.status_code == 200
    ev = proxy.audit(1)[0]
    ts = datetime.datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None, "audit time without a timezone: %r" % ev["time"]
    assert abs((ts - t0).total_seconds()) < 5, (ev["time"], t0)
    assert ev["duration_ms"] >= 900, ev
