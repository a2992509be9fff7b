"""SSRF: every spelling and range of a private or special address is refused
with 403 before any connection; a name that resolves to a private address is
refused after DNS (in a network namespace with its own /etc/hosts)."""

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from policy_harness import AcceptRecorder, Sluice, sluice_bin

# Spellings of 127.0.0.1: a recorder listening there must see no connection.
LOOPBACK_SPELLINGS = [
    "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001", "017700000001",
    "127.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
    "[::127.0.0.1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "localhost",
]

OTHER_RANGES = [
    "169.254.169.254", "[fd00:ec2::254]", "100.100.100.200", "10.0.0.1", "10.255.255.254",
    "172.16.0.1", "172.31.255.1", "192.168.1.1", "100.64.0.1", "100.127.255.254", "198.18.0.1",
    "198.19.255.1", "240.0.0.1", "224.0.0.1", "239.255.255.250", "255.255.255.255", "0.0.0.0",
    "0", "[::]", "[::1]", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[fe80::1%25eth0]",
    "[ff02::1]", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::]", "0xa9.0xfe.0xa9.0xfe", "2852039166", "0251.0376.0251.0376",
]


@pytest.fixture
def recorder():
    r = AcceptRecorder("127.0.0.1")
    yield r
    r.close()


def assert_ssrf_refused(s, url, allow_url_rule=False):
    t0 = time.monotonic()
    r = s.get(url, timeout=10)
    assert r.status == 403, (url, r)
    rule = r.blocked or ""
    assert rule.startswith("ssrf.") or (allow_url_rule and rule.startswith("url.")), (url, rule)
    assert time.monotonic() - t0 < 2, "refusal took a connect attempt's time: %s" % url
    rid = r.headers["x-sluice-request-id"]
    ev = s.audit(wait_for=lambda l: any(e.get("request_id") == rid for e in l))
    ev = [e for e in ev if e.get("request_id") == rid]
    assert ev and ev[0].get("upstream") is None, ev
    return rule


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_spellings_refused_before_connecting(sluice, recorder, host):
    s = sluice(admin=False)
    assert_ssrf_refused(s, "http://%s:%d/" % (host, recorder.port))
    time.sleep(0.2)
    assert recorder.accepts == 0


@pytest.mark.parametrize("host", OTHER_RANGES)
def test_special_ranges_refused(sluice, host):
    s = sluice(admin=False)
    assert_ssrf_refused(s, "http://%s/" % host, allow_url_rule="%25" in host)


def test_the_proxys_own_address_is_refused(sluice):
    s = sluice(admin=False, overrides={"policy": {"allow_private": True}})
    # even with allow_private, the gateway never connects to itself
    for port in s.ports:
        assert assert_ssrf_refused(s, "http://127.0.0.1:%d/" % port) == "ssrf.self"


def test_connect_to_private_literal_refused(sluice, recorder):
    s = sluice(admin=False)
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"CONNECT 2130706433:%d HTTP/1.1\r\nHost: x\r\n\r\n" % recorder.port)
    assert c.recv(4096).startswith(b"HTTP/1.1 403")
    c.close()
    assert recorder.accepts == 0


def test_public_literal_is_not_refused_as_ssrf(sluice):
    # control: the check is about ranges, not about literals as such
    s = sluice(admin=False, overrides={"timeouts": {"connect": "300ms"}})
    r = s.get("http://93.184.216.34/", timeout=10)  # public; no internet here, so 502/504
    assert not (r.blocked or "").startswith("ssrf."), r


# ---- a name that resolves to a private address -------------------------------------

def _netns_ok():
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("curl") is not None


@pytest.fixture
def netns():
    if not _netns_ok():
        pytest.skip("needs root, ip(8) and curl to create a network namespace with its own /etc/hosts")
    name = "sltest-" + uuid.uuid4().hex[:8]
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot create a network namespace: %s" % r.stderr.strip())
    etc = "/etc/netns/" + name
    os.makedirs(etc)
    with open(etc + "/hosts", "w") as f:
        f.write("127.0.0.1 localhost\n"
                "10.1.2.3 private.example\n"
                "127.0.0.1 loop.example\n"
                "169.254.169.254 meta.example\n"
                "::1 v6loop.example\n"
                "fd00:ec2::254 v6meta.example\n"
                "93.184.216.35 mixed.example\n"
                "127.0.0.1 mixed.example\n"
                "93.184.216.34 public.example\n")
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name])
    shutil.rmtree(etc, ignore_errors=True)


def test_name_resolving_to_private_address_is_refused(tmp_path, netns):
    s = Sluice(tmp_path, None, {"timeouts": {"connect": "500ms"}}, name="netns", admin=False,
               netns=netns)
    s._ready_probe = lambda: subprocess.run(
        ["ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
         "import socket; socket.create_connection(('127.0.0.1', %d), 1)" % s.port],
        capture_output=True).returncode == 0
    s.start()
    try:
        def curl(url):
            r = subprocess.run(["ip", "netns", "exec", netns, "curl", "-s", "-m", "10", "-o", "/dev/null",
                                "-w", "%{http_code} %header{x-sluice-blocked}", "--proxy",
                                "http://127.0.0.1:%d" % s.port, url],
                               capture_output=True, text=True)
            return r.stdout.split(" ", 1)

        for host in ["private.example", "loop.example", "meta.example", "v6loop.example",
                     "v6meta.example", "mixed.example"]:
            code, rule = curl("http://%s/" % host)
            assert code == "403" and rule == "ssrf.dns-private-address", (host, code, rule)
        # control: a public answer is not refused as SSRF (the connect then fails: no network)
        code, rule = curl("http://public.example/")
        assert code != "403" and rule == "", (code, rule)
        # the refusal happened after DNS and before any connection
        ev = [e for e in s.audit() if e.get("host") in ("private.example", "mixed.example")]
        assert ev and all(e.get("upstream") is None for e in ev)
    finally:
        assert s.stop() == 0
