"""A CA per identity (identities[].tls): each identity's tunnels get leaves
from its own CA, so trusting one sandbox's CA does not make a client accept
what sluice presents to another sandbox. Identities here are told apart by
proxy credentials (Proxy-Authorization on the CONNECT)."""

import base64
import os
import signal
import socket
import ssl
import stat
import subprocess
import time

import pytest

import tlshelpers as th

URL = "https://secure.test/hello"
HELLO = "hello from secure\n"
PASSWORDS = {"agent-a": "pw-a-1f3e", "agent-b": "pw-b-9c2d", "agent-c": "pw-c-77aa",
             "agent-d": "pw-d-0b1e"}


@pytest.fixture(autouse=True)
def _passwords(monkeypatch):
    """sluice reads each identity's password from its environment."""
    for name, pw in PASSWORDS.items():
        monkeypatch.setenv("SLUICE_T_PW_" + name[-1].upper(), pw)


def ident(name, tls=None):
    i = {"name": name,
         "proxy_auth": {"user": name, "password_env": "SLUICE_T_PW_" + name[-1].upper()}}
    if tls is not None:
        i["tls"] = tls
    return i


def config(pki, upstreams, d, ids=None):
    cfg = th.base_config(pki, upstreams)
    cfg["identities"] = ids if ids is not None else [
        ident("agent-a", {"ca": "ephemeral", "ca_out": os.path.join(d, "a.pem")}),
        ident("agent-b", {"ca": "ephemeral", "ca_out": os.path.join(d, "b.pem")}),
        ident("agent-c"),  # no tls: the instance CA
    ]
    return cfg


def write_config(s, cfg):
    """Rewrite a running sluice's config file the way tlshelpers.Sluice
    writes it at creation (same listener and files)."""
    full = {"listen": [f"127.0.0.1:{s.port}"], "workers": 1, "log": {"level": "debug"},
            "audit": {"path": s.audit_path}}
    full.update(cfg)
    full["tls"] = dict(cfg.get("tls", {}), ca_out=s.ca_path)
    with open(s.config_path, "w") as f:
        f.write(th.to_yaml(full) + "\n")


def reload(s, marker):
    """SIGHUP, then wait until the log shows the outcome; returns the log
    after the call."""
    before = len(s.log_text())
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tail = s.log_text()[before:]
        if "config reloaded" in tail or "rejected" in tail:
            assert marker in tail, tail
            return tail
        time.sleep(0.05)
    raise AssertionError("no reload outcome in the log:\n" + s.log_text()[before:])


def leaf_as(s, user, host="secure.test", cafile=None):
    """CONNECT with the identity's proxy credentials (none for user None),
    then a TLS handshake; returns the leaf PEM. Verifies against `cafile`
    when given (an ssl.SSLCertVerificationError when that fails)."""
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    auth = ""
    if user:
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        auth = f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        sock.close()
        raise AssertionError(f"CONNECT as {user}: {head!r}")
    ctx = th.client_context(cafile)
    try:
        t = ctx.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    try:
        return ssl.DER_cert_to_PEM_cert(t.getpeercert(binary_form=True))
    finally:
        t.close()


def verifies(leaf_pem, cafile, host="secure.test"):
    p = subprocess.run(["openssl", "verify", "-CAfile", cafile, "-purpose", "sslserver",
                        "-verify_hostname", host, "/dev/stdin"], input=leaf_pem,
                       capture_output=True, text=True, timeout=20)
    return p.returncode == 0


def subject(path):
    with open(path) as f:
        return th.x509_field(f.read(), "subject")


def fingerprint(path):
    return th.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path]).stdout


def curl(s, user, cafile, env):
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy", s.proxy,
                           "--proxy-user", f"{user}:{PASSWORDS[user]}", "--cacert", cafile, URL],
                          capture_output=True, timeout=30, env=env)


@pytest.fixture
def two(sluice_factory, pki, upstreams, tmp_path):
    """A sluice with agent-a and agent-b on their own ephemeral CAs and
    agent-c on the instance CA; returns (sluice, dir of the ca_out files)."""
    d = str(tmp_path / "cas")
    os.makedirs(d)
    return sluice_factory(config(pki, upstreams, d)), d


def test_each_identity_gets_leaves_from_its_own_ca(two):
    s, d = two
    a_pem, b_pem = os.path.join(d, "a.pem"), os.path.join(d, "b.pem")
    for p in (a_pem, b_pem):
        with open(p) as f:
            text = f.read()
        assert "PRIVATE KEY" not in text
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o044
    assert len({fingerprint(a_pem), fingerprint(b_pem), fingerprint(s.ca_path)}) == 3
    assert "agent-a" in subject(a_pem) and "agent-b" in subject(b_pem)

    leaf_a = leaf_as(s, "agent-a", cafile=a_pem)  # verified in the handshake
    leaf_b = leaf_as(s, "agent-b", cafile=b_pem)
    assert th.x509_field(leaf_a, "issuer") == subject(a_pem)
    assert th.x509_field(leaf_b, "issuer") == subject(b_pem)
    assert verifies(leaf_a, a_pem) and not verifies(leaf_a, b_pem)
    assert not verifies(leaf_a, s.ca_path)
    assert verifies(leaf_b, b_pem) and not verifies(leaf_b, a_pem)
    # One host, one leaf per CA: B is never served the leaf A's CA minted
    # (and each identity's leaf for the host is cached).
    serial = lambda pem: th.x509_field(pem, "serial")  # noqa: E731
    assert serial(leaf_a) != serial(leaf_b)
    assert serial(leaf_as(s, "agent-a")) == serial(leaf_a)
    assert serial(leaf_as(s, "agent-b")) == serial(leaf_b)


def test_curl_trusting_a_fails_as_b(two, client_env):
    s, d = two
    a_pem = os.path.join(d, "a.pem")
    p = curl(s, "agent-a", a_pem, client_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == HELLO
    p = curl(s, "agent-b", a_pem, client_env)
    assert p.returncode == 60, (p.returncode, p.stderr)  # CURLE_PEER_FAILED_VERIFICATION
    p = curl(s, "agent-b", os.path.join(d, "b.pem"), client_env)
    assert p.returncode == 0, p.stderr
    # Trusting the instance CA does not open A's tunnels either.
    p = curl(s, "agent-a", s.ca_path, client_env)
    assert p.returncode == 60, (p.returncode, p.stderr)


def test_identity_without_own_ca_uses_the_instance_ca(two):
    s, d = two
    for user in ("agent-c", None):  # a configured identity, and the default one
        leaf = leaf_as(s, user, cafile=s.ca_path)
        assert th.x509_field(leaf, "issuer") == subject(s.ca_path)
        assert not verifies(leaf, os.path.join(d, "a.pem"))
    with pytest.raises(ssl.SSLCertVerificationError):
        leaf_as(s, "agent-c", cafile=os.path.join(d, "a.pem"))


def test_persistent_identity_ca_and_key_mode(sluice_bin, sluice_factory, pki, upstreams,
                                             tmp_path):
    d = str(tmp_path / "files")
    os.makedirs(d)
    cert, key = os.path.join(d, "a-ca.pem"), os.path.join(d, "a-ca.key")
    p = subprocess.run([sluice_bin, "ca", "init", "--cert", cert, "--key", key, "--cn",
                        "agent-a persistent CA"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    ids = [ident("agent-a", {"ca_cert": cert, "ca_key": key}), ident("agent-b")]
    cfg = config(pki, upstreams, d, ids)

    s = sluice_factory(cfg, name="files-ok")
    leaf = leaf_as(s, "agent-a", cafile=cert)
    assert th.x509_field(leaf, "issuer") == subject(cert)
    assert "agent-a persistent CA" in subject(cert)
    assert th.x509_field(leaf_as(s, "agent-b"), "issuer") == subject(s.ca_path)
    s.stop()

    os.chmod(key, 0o644)  # readable by others: refused, for an identity too
    bad = sluice_factory(cfg, start=False, name="files-bad")
    with pytest.raises(RuntimeError) as e:
        bad.start()
    msg = str(e.value)
    assert "identity agent-a" in msg and key in msg and "chmod 600" in msg, msg
    p = subprocess.run([sluice_bin, "check", "-c", bad.config_path], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "identity agent-a" in p.stderr and key in p.stderr and "chmod 600" in p.stderr


def test_check_names_bad_identity_tls(sluice_bin, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "identities:\n"
        "  - { name: x1, sources: [\"127.0.0.2/32\"], tls: { ca: ephemeral } }\n"
        "  - { name: x2, sources: [\"127.0.0.3/32\"], tls: { ca_cert: /etc/x.pem } }\n"
        "  - { name: x3, sources: [\"127.0.0.4/32\"], tls: { ca: ephemeral, ca_out: /tmp/sluice-ca.pem } }\n")
    p = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1
    assert "bad.yaml:2:" in p.stderr and "needs ca_out" in p.stderr, p.stderr
    assert "bad.yaml:3:" in p.stderr and "go together" in p.stderr, p.stderr
    assert "bad.yaml:4:" in p.stderr and "another CA" in p.stderr, p.stderr

    path.write_text("tls: { ca_cert: /etc/x.pem }\n")  # the instance CA: same pairing rule
    p = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1 and "bad.yaml:1:" in p.stderr and "go together" in p.stderr, \
        p.stderr

    good = tmp_path / "good.yaml"
    good.write_text(
        "identities:\n"
        f"  - {{ name: x1, sources: [\"127.0.0.2/32\"], tls: {{ ca: ephemeral, ca_out: {tmp_path}/x1.pem }} }}\n"
        "  - { name: x2, sources: [\"127.0.0.3/32\"] }\n")
    p = subprocess.run([sluice_bin, "check", "-c", str(good)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, p.stderr


def test_reload_keeps_ephemeral_identity_cas(two, pki, upstreams):
    s, d = two
    a_pem, b_pem = os.path.join(d, "a.pem"), os.path.join(d, "b.pem")
    fp_a, ino_a = fingerprint(a_pem), os.stat(a_pem).st_ino
    fp_b, fp_inst = fingerprint(b_pem), fingerprint(s.ca_path)
    leaf_before = leaf_as(s, "agent-a", cafile=a_pem)

    # agent-b drops its own CA, agent-d arrives with one, agent-a unchanged.
    d_pem = os.path.join(d, "d.pem")
    cfg = config(pki, upstreams, d, [
        ident("agent-a", {"ca": "ephemeral", "ca_out": a_pem}),
        ident("agent-b"),
        ident("agent-c"),
        ident("agent-d", {"ca": "ephemeral", "ca_out": d_pem}),
    ])
    write_config(s, cfg)
    reload(s, "config reloaded")
    assert fingerprint(a_pem) == fp_a
    assert os.stat(a_pem).st_ino == ino_a  # not even rewritten
    assert fingerprint(s.ca_path) == fp_inst
    leaf_after = leaf_as(s, "agent-a", cafile=a_pem)  # still trusted
    assert th.x509_field(leaf_after, "serial") == th.x509_field(leaf_before, "serial")
    assert th.x509_field(leaf_as(s, "agent-b", cafile=s.ca_path), "issuer") == \
        subject(s.ca_path)
    assert th.x509_field(leaf_as(s, "agent-d", cafile=d_pem), "issuer") == subject(d_pem)

    # agent-b gets a CA again: a new one, not the one dropped above.
    cfg["identities"][1] = ident("agent-b", {"ca": "ephemeral", "ca_out": b_pem})
    write_config(s, cfg)
    reload(s, "config reloaded")
    assert fingerprint(b_pem) != fp_b
    assert fingerprint(a_pem) == fp_a

    # A reload that cannot load an identity's CA is rejected as a whole.
    cfg["identities"][0] = ident("agent-a", {"ca_cert": os.path.join(d, "missing.pem"),
                                             "ca_key": os.path.join(d, "missing.key")})
    write_config(s, cfg)
    tail = reload(s, "rejected")
    assert "identity agent-a" in tail and "missing.pem" in tail, tail
    assert fingerprint(a_pem) == fp_a
    leaf_as(s, "agent-a", cafile=a_pem)


def test_ca_show_per_identity(two, sluice_bin):
    s, d = two
    a_pem = os.path.join(d, "a.pem")
    fp_a = fingerprint(a_pem).strip().split("=", 1)[1]
    p = subprocess.run([sluice_bin, "ca", "show", "-c", s.config_path, "--identity", "agent-a"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert fp_a in p.stdout and "identity agent-a" in p.stdout
    p = subprocess.run([sluice_bin, "ca", "show", "-c", s.config_path, "--identity", "agent-c"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert "instance CA" in p.stdout
    assert fingerprint(s.ca_path).strip().split("=", 1)[1] in p.stdout
    p = subprocess.run([sluice_bin, "ca", "show", "-c", s.config_path], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("-----BEGIN CERTIFICATE-----") == 3
    assert "identity agent-b" in p.stdout and fp_a in p.stdout
    p = subprocess.run([sluice_bin, "ca", "show", "-c", s.config_path, "--identity", "nobody"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "nobody" in p.stderr
