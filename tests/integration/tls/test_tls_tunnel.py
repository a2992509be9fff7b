"""Tunnel behaviour: passthrough, plain HTTP inside CONNECT, keep-alive,
HTTP/1.0 CONNECT, protocol versions and ALPN, audit lines."""

import json
import socket
import ssl
import subprocess
import time
import uuid

import pytest

import tlshelpers as th


def s_client_out(port, host, *args, servername=None):
    cmd = ["openssl", "s_client", "-proxy", f"127.0.0.1:{port}", "-connect", f"{host}:443",
           "-servername", servername or host, "-showcerts", *args]
    p = subprocess.run(cmd, input=b"", capture_output=True, timeout=20)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def leaf_pem(out):
    pems = th.PEM_RE.findall(out)
    assert pems, out
    return pems[0] + "\n"


def test_passthrough_client_sees_upstream_certificate(sluice, pki):
    rc, out = s_client_out(sluice.port, "pinned.test", "-CAfile", pki.ca, "-verify_return_error")
    assert rc == 0, out
    leaf = leaf_pem(out)
    assert x509_issuer(leaf) == x509_subject_of_file(pki.ca)
    assert x509_issuer(leaf) != x509_subject_of_file(sluice.ca_path)


def test_passthrough_curl_with_upstream_ca(sluice, pki, client_env):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy", sluice.proxy, "--cacert",
                        pki.ca, "https://pinned.test/hello"],
                       capture_output=True, text=True, timeout=30, env=client_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from pinned\n"


def test_intercepted_client_sees_sluice_certificate(sluice):
    rc, out = s_client_out(sluice.port, "secure.test", "-CAfile", sluice.ca_path,
                           "-verify_return_error")
    assert rc == 0, out
    assert x509_issuer(leaf_pem(out)) == x509_subject_of_file(sluice.ca_path)


def test_intercept_off_is_a_raw_tunnel(sluice_factory, pki, upstreams):
    cfg = th.base_config(pki, upstreams)
    cfg["tls"] = {"intercept": False}
    s = sluice_factory(cfg)
    rc, out = s_client_out(s.port, "secure.test", "-CAfile", pki.ca, "-verify_return_error")
    assert rc == 0, out
    assert x509_issuer(leaf_pem(out)) == x509_subject_of_file(pki.ca)


def x509_issuer(pem):
    return th.x509_field(pem, "issuer")


def x509_subject_of_file(path):
    with open(path) as f:
        return th.x509_field(f.read(), "subject")


def test_plain_http_inside_connect(sluice, upstreams):
    """Non-TLS first bytes in a tunnel are read as plain HTTP/1.1 and go
    through the same pipeline, pinned to the tunnel host."""
    sock, status, _ = th.connect_tunnel(sluice.port, "plain.test", 80)
    assert " 200 " in status
    tag = uuid.uuid4().hex
    f = sock.makefile("rb")
    sock.sendall(f"GET /echo?tag={tag} HTTP/1.1\r\nHost: plain.test\r\n\r\n".encode())
    st, _, body = th.read_response(f)
    assert st == 200, body
    assert json.loads(body)["path"] == f"/echo?tag={tag}"
    # Same tunnel, another request: still pinned to plain.test.
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: secure.test\r\n\r\n")
    st, headers, _ = th.read_response(f)
    sock.close()
    assert st == 403 and headers.get("x-sluice-blocked") == "tls.host-mismatch"
    assert any(tag in q["path"] for q in upstreams["plain"].requests)


def test_curl_proxytunnel_plain_http(sluice, client_env):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy", sluice.proxy,
                        "--proxytunnel", "http://plain.test/hello"],
                       capture_output=True, text=True, timeout=30, env=client_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from plain\n"


def test_keep_alive_inside_tunnel(sluice, upstreams):
    """Several requests, pipelined and sequential, on one TLS connection."""
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    assert " 200 " in status
    t = ssl.create_default_context(cafile=sluice.ca_path).wrap_socket(
        sock, server_hostname="secure.test")
    f = t.makefile("rb")
    tag = uuid.uuid4().hex
    for i in range(3):
        t.sendall(f"GET /echo?tag={tag}&i={i} HTTP/1.1\r\nHost: secure.test\r\n\r\n".encode())
        st, _, body = th.read_response(f)
        assert st == 200 and json.loads(body)["path"] == f"/echo?tag={tag}&i={i}"
    t.sendall(b"".join(f"GET /echo?tag={tag}&i={i} HTTP/1.1\r\nHost: secure.test\r\n\r\n"
                       .encode() for i in range(3, 6)))
    for i in range(3, 6):
        st, _, body = th.read_response(f)
        assert st == 200 and json.loads(body)["path"] == f"/echo?tag={tag}&i={i}"
    t.close()
    seen = [q["path"] for q in upstreams["secure"].requests if tag in q["path"]]
    assert seen == [f"/echo?tag={tag}&i={i}" for i in range(6)]


@pytest.mark.parametrize("connect", [
    # Python's http.client (hence urllib3, requests) and openssl s_client.
    b"CONNECT secure.test:443 HTTP/1.0\r\nHost: secure.test:443\r\n\r\n",
    # undici's ProxyAgent (Node fetch).
    b"CONNECT secure.test:443 HTTP/1.1\r\nhost: secure.test\r\nconnection: close\r\n\r\n",
], ids=["http10", "connection-close"])
def test_connect_variants_are_intercepted(sluice, connect):
    """Real clients send CONNECT as HTTP/1.0 or with `Connection: close`;
    either way the tunnel must stay open after the 200."""
    s = socket.create_connection(("127.0.0.1", sluice.port), timeout=10)
    s.sendall(connect)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert b" 200 " in head.split(b"\r\n")[0]
    t = ssl.create_default_context(cafile=sluice.ca_path).wrap_socket(
        s, server_hostname="secure.test")
    t.sendall(b"GET /hello HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n")
    st, _, body = th.read_response(t.makefile("rb"))
    t.close()
    assert (st, body) == (200, b"hello from secure\n")


@pytest.mark.parametrize("ver", ["TLSv1_2", "TLSv1_3"])
def test_tls_versions(sluice, ver):
    v = getattr(ssl.TLSVersion, ver)
    got = th.tls_handshake(sluice.port, "secure.test", sluice.ca_path, versions=(v, v))
    assert got["version"] == ver.replace("_", ".")


def test_tls_versions_s_client(sluice):
    rc, out = s_client_out(sluice.port, "secure.test", "-tls1_2", "-CAfile", sluice.ca_path,
                           "-verify_return_error")
    assert rc == 0, out
    assert "TLSv1.2" in out


def test_no_session_resumption(sluice):
    """docs/tls.md: no tickets, no server session cache: every intercepted
    connection is a full handshake."""
    v = ssl.TLSVersion.TLSv1_2
    ctx = ssl.create_default_context(cafile=sluice.ca_path)
    ctx.minimum_version = ctx.maximum_version = v
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    t = ctx.wrap_socket(sock, server_hostname="secure.test")
    t.sendall(b"GET /hello HTTP/1.1\r\nHost: secure.test\r\n\r\n")
    th.read_response(t.makefile("rb"))
    sess = t.session
    t.close()
    assert sess is not None and not sess.has_ticket
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    t = ctx.wrap_socket(sock, server_hostname="secure.test", session=sess)
    reused = t.session_reused
    t.close()
    assert not reused


def test_alpn_http11(sluice):
    got = th.tls_handshake(sluice.port, "secure.test", sluice.ca_path, alpn=["h2", "http/1.1"])
    assert got["alpn"] == "http/1.1"


def test_intercepted_leaf_issuer_python(sluice):
    leaf = th.tls_handshake(sluice.port, "secure.test", sluice.ca_path)["pem"]
    assert x509_issuer(leaf) == x509_subject_of_file(sluice.ca_path)


def test_audit_lines(sluice, client_env):
    tag, secret = uuid.uuid4().hex, uuid.uuid4().hex
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy", sluice.proxy, "--cacert",
                        sluice.ca_path, f"https://secure.test/hello/{tag}?q={secret}"],
                       capture_output=True, text=True, timeout=30, env=client_env)
    assert p.returncode == 0, p.stderr
    inner = None
    for _ in range(50):
        events = sluice.audit()
        inner = [e for e in events if tag in (e.get("path") or "")]
        if inner:
            break
        time.sleep(0.1)
    assert len(inner) == 1, events[-5:]
    e = inner[0]
    assert e["host"] == "secure.test" and e["method"] == "GET"
    assert e["path"].startswith(f"/hello/{tag}")
    assert secret not in json.dumps(events)  # query values are not logged
    assert e["status"] == 200 and e["verdict"] == "allow"
    assert e["upstream"].startswith("127.0.0.1:")
    # The CONNECT that opened this tunnel is logged before it.
    i = events.index(e)
    connects = [c for c in events[:i] if c["method"] == "CONNECT" and c["host"] == "secure.test"]
    assert connects and connects[-1]["reason"] == "tunnel intercepted"
    assert connects[-1]["status"] == 200


def test_audit_upstream_tls_failure(sluice, client_env):
    tag = uuid.uuid4().hex
    subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy", sluice.proxy, "--cacert",
                    sluice.ca_path, f"https://expired.test/hello/{tag}"],
                   capture_output=True, timeout=30, env=client_env)
    for _ in range(50):
        inner = [e for e in sluice.audit() if tag in (e.get("path") or "")]
        if inner:
            break
        time.sleep(0.1)
    assert len(inner) == 1
    assert inner[0]["status"] == 502
    assert "upstream-tls" in (inner[0]["reason"] or "")
