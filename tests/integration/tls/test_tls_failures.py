"""Failure cases of TLS interception: the agent side (SNI, trust, Host
pinning, policy) and the upstream side (bad certificates -> 502)."""

import json
import ssl
import subprocess

import pytest

import tlshelpers as th


def s_client(sluice, host, *args, servername=None, cafile=None, timeout=20):
    cmd = ["openssl", "s_client", "-proxy", f"127.0.0.1:{sluice.port}",
           "-connect", f"{host}:443", "-servername", servername or host]
    if cafile:
        cmd += ["-CAfile", cafile, "-verify_return_error"]
    cmd += list(args)
    p = subprocess.run(cmd, input=b"", capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def test_s_client_handshake_ok(sluice):
    """Baseline for the failure cases below: the same command with the
    right SNI and sluice's CA verifies."""
    rc, out = s_client(sluice, "secure.test", "-showcerts", cafile=sluice.ca_path)
    assert rc == 0, out
    assert "Verify return code: 0 (ok)" in out
    # The leaf alone: the client has sluice's CA as its trust anchor.
    assert len(th.PEM_RE.findall(out)) == 1, out


def test_wrong_sni_fails_handshake(sluice, upstreams):
    before = len(upstreams["secure"].requests)
    rc, out = s_client(sluice, "secure.test", servername="other.test", cafile=sluice.ca_path)
    assert rc != 0, out
    assert "unrecognized name" in out or "alert number 112" in out, out
    assert len(upstreams["secure"].requests) == before


def test_wrong_sni_python_client(sluice):
    """A client whose SNI differs from its CONNECT host never completes the
    handshake, whatever it trusts."""
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    assert " 200 " in status
    ctx = ssl.create_default_context(cafile=sluice.ca_path)
    ctx.check_hostname = False
    with pytest.raises(ssl.SSLError) as e:
        ctx.wrap_socket(sock, server_hostname="denied.test")
    assert "UNRECOGNIZED_NAME" in str(e.value).upper()
    sock.close()


def test_client_not_trusting_ca_gets_verify_error(sluice, pki):
    rc, out = s_client(sluice, "secure.test", cafile=pki.ca)
    assert rc != 0, out
    assert "verify error" in out or "certificate verify failed" in out, out


@pytest.mark.parametrize("host,why", [
    ("wrong-name.test", ["hostname", "name mismatch"]),
    ("expired.test", ["expired"]),
    ("untrusted.test", ["self-signed", "self signed", "local issuer", "unable to get"]),
])
def test_bad_upstream_certificate_is_502(sluice, client_env, host, why):
    p = subprocess.run(["curl", "-sS", "-i", "--max-time", "20", "--proxy", sluice.proxy,
                        "--cacert", sluice.ca_path, f"https://{host}/hello"],
                       capture_output=True, timeout=30, env=client_env)
    assert p.returncode == 0, p.stderr
    head, body = p.stdout.split(b"\r\n\r\n", 2)[1:]
    head = head.decode()
    assert head.startswith("HTTP/1.1 502"), head
    assert "x-sluice-error: upstream-tls" in head.lower(), head
    doc = json.loads(body)
    text = json.dumps(doc).lower()
    assert "upstream-tls" in text
    assert any(w in text for w in why), doc
    assert b"hello from" not in body


def test_upstream_trust_is_per_route(sluice_factory, pki, upstreams, client_env):
    """Without the route's ca_file (and no upstream_ca_file) the test
    upstream is untrusted: verification really consults the bundles."""
    s = sluice_factory(th.base_config(pki, upstreams, route_ca=False))
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                        "20", "--proxy", s.proxy, "--cacert", s.ca_path,
                        "https://secure.test/hello"],
                       capture_output=True, text=True, timeout=30, env=client_env)
    assert p.stdout == "502", (p.stdout, p.stderr)


def test_upstream_ca_file_global(sluice_factory, pki, upstreams, client_env):
    cfg = th.base_config(pki, upstreams, route_ca=False)
    cfg["tls"]["upstream_ca_file"] = pki.ca
    s = sluice_factory(cfg)
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy", s.proxy, "--cacert",
                        s.ca_path, "https://secure.test/hello"],
                       capture_output=True, text=True, timeout=30, env=client_env)
    assert p.returncode == 0 and p.stdout == "hello from secure\n", (p.stdout, p.stderr)


def tls_tunnel(sluice, host="secure.test"):
    sock, status, _ = th.connect_tunnel(sluice.port, host, 443)
    assert " 200 " in status, status
    ctx = ssl.create_default_context(cafile=sluice.ca_path)
    return ctx.wrap_socket(sock, server_hostname=host)


@pytest.mark.parametrize("request_head", [
    "GET /hello?m=hosthdr HTTP/1.1\r\nHost: evil.test\r\n\r\n",
    "GET /hello?m=hostport HTTP/1.1\r\nHost: evil.test:443\r\n\r\n",
    "GET https://evil.test/hello?m=absform HTTP/1.1\r\nHost: secure.test\r\n\r\n",
])
def test_host_mismatch_inside_tunnel_is_403(sluice, upstreams, request_head):
    t = tls_tunnel(sluice)
    t.sendall(request_head.encode())
    status, headers, body = th.read_response(t.makefile("rb"))
    t.close()
    assert status == 403, body
    assert headers.get("x-sluice-blocked") == "tls.host-mismatch", headers
    marker = request_head.split("?m=")[1].split()[0]
    assert not any(marker in q["path"] for q in upstreams["secure"].requests)


def test_host_header_with_port_is_accepted(sluice):
    t = tls_tunnel(sluice)
    t.sendall(b"GET /hello HTTP/1.1\r\nHost: secure.test:443\r\nConnection: close\r\n\r\n")
    status, _, body = th.read_response(t.makefile("rb"))
    t.close()
    assert (status, body) == (200, b"hello from secure\n")


def test_connect_inside_tunnel_refused(sluice, upstreams):
    t = tls_tunnel(sluice)
    t.sendall(b"CONNECT pinned.test:443 HTTP/1.1\r\nHost: pinned.test:443\r\n\r\n")
    status, _, _ = th.read_response(t.makefile("rb"))
    t.close()
    assert 400 <= status < 500


@pytest.mark.parametrize("host", ["denied.test", "pinned-denied.test"])
def test_denied_host_refused_at_connect(sluice, host):
    """Host policy applies before interception, and to passthrough hosts."""
    sock, status, head = th.connect_tunnel(sluice.port, host, 443)
    sock.close()
    assert " 403 " in status, head


def test_tls_to_plain_upstream_is_502(sluice, client_env):
    """TLS from the agent to a port where the upstream speaks plain HTTP:
    sluice's upstream handshake fails cleanly (502 upstream-tls), it does
    not fall back to plaintext."""
    p = subprocess.run(["curl", "-sS", "-i", "--max-time", "20", "--proxy", sluice.proxy,
                        "--cacert", sluice.ca_path, "https://plain.test:80/echo"],
                       capture_output=True, timeout=30, env=client_env)
    assert p.returncode == 0, p.stderr
    head = p.stdout.split(b"\r\n\r\n", 2)[1].decode().lower()
    assert head.startswith("http/1.1 502"), head
    assert "x-sluice-error: upstream-tls" in head


@pytest.mark.parametrize("host", ["*.test", "bad_host!.test", "a..test", "x" * 64 + ".test"],
                         ids=["wildcard", "bad-char", "empty-label", "long-label"])
def test_invalid_connect_host_refused(sluice, host):
    """The CONNECT host becomes a certificate name: invalid names are
    refused before any leaf is minted."""
    sock, status, head = th.connect_tunnel(sluice.port, host, 443)
    sock.close()
    assert " 400 " in status, head


@pytest.mark.parametrize("host", ["-lead.odd.test", "trail-.odd.test"])
def test_invalid_name_behind_glob_route_gets_no_leaf(sluice, host):
    """A name the glob route accepts but that is no valid DNS name: the
    CONNECT is refused, or the handshake fails; no leaf is minted for it."""
    with pytest.raises((AssertionError, ssl.SSLError, OSError)):
        th.tls_handshake(sluice.port, host)


def test_valid_name_behind_glob_route_gets_leaf(sluice):
    leaf = th.tls_handshake(sluice.port, "ok.odd.test", sluice.ca_path)["pem"]
    assert "DNS:ok.odd.test" in th.x509_text(leaf)


def test_policy_rules_apply_inside_tunnel(sluice_factory, pki, upstreams):
    """Method and path rules for the host are enforced on each request
    inside an intercepted tunnel, not just on the CONNECT."""
    cfg = th.base_config(pki, upstreams)
    cfg["policy"]["rules"] = [{"host": "secure.test", "methods": ["GET", "HEAD"],
                               "paths": ["/hello"]}]
    s = sluice_factory(cfg)
    t = tls_tunnel(s)
    f = t.makefile("rb")
    got = []
    for head in (b"GET /hello HTTP/1.1\r\nHost: secure.test\r\n\r\n",
                 b"GET /echo?m=rule-path HTTP/1.1\r\nHost: secure.test\r\n\r\n",
                 b"POST /hello?m=rule-method HTTP/1.1\r\nHost: secure.test\r\n"
                 b"Content-Length: 0\r\n\r\n"):
        t.sendall(head)
        st, headers, _ = th.read_response(f)
        got.append(st)
        if st != 200:
            break
    t.close()
    assert got[0] == 200, got
    assert got[1] == 403, got
    assert not any("m=rule-" in q["path"] for q in upstreams["secure"].requests)
    t = tls_tunnel(s)
    t.sendall(b"POST /hello?m=rule-method HTTP/1.1\r\nHost: secure.test\r\n"
              b"Content-Length: 0\r\n\r\n")
    st, _, _ = th.read_response(t.makefile("rb"))
    t.close()
    assert st == 403
    assert not any("m=rule-" in q["path"] for q in upstreams["secure"].requests)
