"""Inspection in the traffic through the real proxy (issue 8): what leaves is
checked for credentials, what comes back for prompt injection. Samples come
from the rules' own examples (rules/*.yaml), so the tests follow the rules."""

import hashlib
import time
from pathlib import Path

import requests
import yaml
from sluice_harness import rule_example as example  # noqa: E402  (the rules' own examples)

ROOT = Path(__file__).resolve().parents[2]


AWS = example("aws-access-key-id").split("=")[-1].strip()
INJECTION = example("inj-ignore-previous-instructions")


def proxies(s):
    return {"http": "http://127.0.0.1:%d" % s.port}


def test_credential_in_query_is_refused_before_any_connection(proxy, upstream):
    r = requests.get("http://upstream.test/fixed?n=1&key=" + AWS, proxies=proxies(proxy))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "aws-access-key-id"
    body = r.json()
    assert body["rule"] == "aws-access-key-id" and body["scanner"] == "inspect:credential"
    assert AWS not in r.text
    time.sleep(0.2)
    assert upstream.snapshot()["bytes_received"] == 0


def test_credential_split_over_query_values_is_refused(proxy, upstream):
    half = len(AWS) // 2
    r = requests.get("http://upstream.test/fixed?a=%s&b=%s" % (AWS[:half], AWS[half:]),
                     proxies=proxies(proxy))
    assert r.status_code == 403
    assert r.json()["rule"] == "aws-access-key-id"


def test_credential_in_header_is_refused(proxy, upstream):
    r = requests.get("http://upstream.test/fixed?n=1", proxies=proxies(proxy),
                     headers={"X-Debug": "aws_access_key_id=" + AWS})
    assert r.status_code == 403
    assert r.json()["rule"] == "aws-access-key-id"


def test_credential_in_body_never_reaches_upstream(proxy, upstream):
    body = ("x" * 3000 + "\naws_access_key_id = " + AWS + "\n" + "y" * 3000).encode()
    r = requests.post("http://upstream.test/echo", proxies=proxies(proxy), data=body)
    assert r.status_code == 403
    assert r.json()["rule"] == "aws-access-key-id"
    time.sleep(0.2)
    assert upstream.snapshot()["requests"] == []
    for b in upstream.conn_bytes.values():
        assert AWS.encode() not in b


def test_credential_split_across_body_chunks_is_refused(proxy, upstream):
    body = ("a" * 5000 + "\naws_access_key_id = " + AWS + "\n" + "b" * 5000).encode()
    cut = body.index(AWS.encode()) + 7

    def gen():
        yield body[:cut]
        time.sleep(0.2)
        yield body[cut:]
    r = requests.post("http://upstream.test/echo", proxies=proxies(proxy), data=gen())
    assert r.status_code == 403
    for b in upstream.conn_bytes.values():
        assert AWS[:10].encode() not in b


def test_clean_body_passes_unchanged(proxy, upstream):
    body = ("Quarterly report. Revenue grew 4% while costs fell. " * 200).encode()
    r = requests.post("http://upstream.test/echo", proxies=proxies(proxy), data=body)
    assert r.status_code == 200
    assert r.headers["X-Request-Sha256"] == hashlib.sha256(body).hexdigest()


def test_prompt_injection_in_response_is_refused(proxy, upstream):
    # The upstream echoes what it got: a response carrying an injection.
    page = ("<html><body><p>Weather today: sunny.</p><p>%s</p></body></html>" % INJECTION).encode()
    r = requests.post("http://upstream.test/echo", proxies=proxies(proxy), data=page)
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"].startswith("inj-")
    assert r.json()["scanner"] == "inspect:injection"
    assert INJECTION not in r.text


def test_benign_response_is_delivered(proxy, upstream):
    page = b"<html><body><p>To install, run make and then make install.</p></body></html>"
    r = requests.post("http://upstream.test/echo", proxies=proxies(proxy), data=page)
    assert r.status_code == 200
    assert r.content == page


def test_upstream_is_asked_for_identity_encoding(proxy, upstream):
    requests.get("http://upstream.test/fixed?n=1", proxies=proxies(proxy),
                 headers={"Accept-Encoding": "gzip, br"})
    req = upstream.wait_requests(1)[0]
    assert req.header("accept-encoding") == "identity"


def test_findings_are_audited_by_rule_id(proxy, upstream):
    requests.get("http://upstream.test/fixed?n=1&key=" + AWS, proxies=proxies(proxy))
    ev = proxy.audit(1)[0]
    assert ev["verdict"] == "block"
    assert ev["rule"] == "aws-access-key-id"
    assert "aws-access-key-id" in ev["findings"]
    assert AWS not in proxy.audit_text()


def test_warn_override_lets_it_through_and_audits(sluice_factory, upstream):
    s = sluice_factory({"inspect": {"warn": ["aws-access-key-id"]}})
    r = requests.get("http://upstream.test/fixed?n=1&key=" + AWS, proxies=proxies(s))
    assert r.status_code == 200
    ev = s.audit(1)[0]
    assert "aws-access-key-id" in ev["findings"]


def test_inspection_off(sluice_factory, upstream):
    s = sluice_factory({"inspect": {"enabled": False}})
    r = requests.get("http://upstream.test/fixed?n=1&key=" + AWS, proxies=proxies(s))
    assert r.status_code == 200
