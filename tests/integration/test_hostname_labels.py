"""Data smuggled in the host name itself (issue 4): long encoded or random
labels are refused before any DNS lookup, on plain requests and CONNECT."""

import base64
import os
import random
import socket

import pytest
import requests

ENCODED = [
    base64.b32encode(os.urandom(20)).decode().lower().rstrip("="),          # base32
    os.urandom(16).hex(),                                                   # hex
    base64.urlsafe_b64encode(b"password=hunter2&user=admin").decode().rstrip("=").lower(),
]

def split_labels(data, size):
    return ".".join(data[i:i + size] for i in range(0, len(data), size))


_rng = random.Random(8)  # fixed: a hex chunk without a digit is rare but possible
# Data cut into short labels, each too short to be judged alone.
SPLIT = [
    split_labels(_rng.randbytes(24).hex(), 8),                              # 6 x 8 hex
    split_labels(_rng.randbytes(15).hex(), 6),                              # 5 x 6 hex
    _rng.randbytes(6).hex() + "." + _rng.randbytes(6).hex() + "." + _rng.randbytes(5).hex(),
]
ORDINARY = [
    "my-company-production-logs-bucket-2024.s3.example.com",
    "storage-googleapis-com-internal.example.net",
    "api.github.com",
    # Service names with digit-bearing labels: one such label, or dashed.
    "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
    "d1234abcd5678.cloudfront.net",
    "ec2-203-0-113-25.compute-1.amazonaws.com",
    "build2024.runner42.ci.example.com",
    "v2.api.example.com",
]


def proxies(s):
    return {"http": "http://127.0.0.1:%d" % s.port}


@pytest.mark.parametrize("label", ENCODED)
def test_encoded_label_refused(proxy, upstream, label):
    r = requests.get("http://%s.collector.example/x" % label, proxies=proxies(proxy))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "url.encoded-hostname"


@pytest.mark.parametrize("label", ENCODED)
def test_encoded_label_refused_on_connect(proxy, label):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        host = "%s.collector.example:443" % label
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host)).encode())
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 403")
    assert "url.encoded-hostname" in head


@pytest.mark.parametrize("labels", SPLIT)
def test_data_split_into_short_labels_refused(proxy, upstream, labels):
    r = requests.get("http://%s.collector.example/x" % labels, proxies=proxies(proxy))
    assert r.status_code == 403
    assert r.headers["X-Sluice-Blocked"] == "url.encoded-hostname"
    assert "consecutive labels" in r.json()["reason"]


@pytest.mark.parametrize("host", ORDINARY)
def test_ordinary_names_are_not_refused_for_their_shape(proxy, host):
    r = requests.get("http://%s/x" % host, proxies=proxies(proxy))
    # No network here: a DNS failure (502) is fine, a block for the name is not.
    assert r.headers.get("X-Sluice-Blocked") != "url.encoded-hostname"
