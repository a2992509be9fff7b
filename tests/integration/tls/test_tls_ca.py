"""The interception CA and its leaves, seen from outside: the certificate in
tls.ca_out, minted leaves, the leaf cache, `sluice ca init`, loading a
persistent CA and refusing a readable key."""

import datetime
import os
import re
import stat
import subprocess

import pytest

import tlshelpers as th


def fetch_leaf(port, host, cafile=None):
    """The leaf sluice presents for `host` (Python ssl after an HTTP/1.1
    CONNECT; the s_client tests live in test_tls_failures/test_tls_tunnel)."""
    return th.tls_handshake(port, host, cafile=cafile)["pem"]


def cert_time(pem, which):
    v = th.run_input(["openssl", "x509", "-noout", f"-{which}"], pem).split("=", 1)[1].strip()
    return datetime.datetime.strptime(v, "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=datetime.timezone.utc)


def test_ca_out_is_a_ca_certificate(sluice):
    text = th.x509_text(sluice.ca_path)
    assert re.search(r"Basic Constraints: critical\s+CA:TRUE", text), text
    assert "Certificate Sign" in text
    with open(sluice.ca_path) as f:
        content = f.read()
    assert "PRIVATE KEY" not in content  # only the certificate is handed out
    mode = stat.S_IMODE(os.stat(sluice.ca_path).st_mode)
    assert mode & 0o044, oct(mode)  # readable: meant for the sandbox


def test_leaf_san_issuer_and_chain(sluice):
    leaf = fetch_leaf(sluice.port, "secure.test", sluice.ca_path)
    text = th.x509_text(leaf)
    assert re.search(r"Subject Alternative Name:\s+DNS:secure\.test\s", text), text
    assert "CA:TRUE" not in text
    assert th.x509_field(leaf, "issuer") == th.x509_field(open(sluice.ca_path).read(), "subject")
    p = subprocess.run(["openssl", "verify", "-CAfile", sluice.ca_path, "-purpose", "sslserver",
                        "-verify_hostname", "secure.test", "/dev/stdin"], input=leaf,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr


def test_leaf_lifetime_short_and_backdated(sluice):
    leaf = fetch_leaf(sluice.port, "secure.test", sluice.ca_path)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = cert_time(leaf, "startdate"), cert_time(leaf, "enddate")
    assert start <= now - datetime.timedelta(minutes=5), start  # backdated
    assert end - start <= datetime.timedelta(days=3), (start, end)  # default 24h + backdate
    assert end > now


def test_leaf_is_cached(sluice):
    a = fetch_leaf(sluice.port, "secure.test")
    b = fetch_leaf(sluice.port, "secure.test")
    c = fetch_leaf(sluice.port, "untrusted.test")
    serial = lambda pem: th.x509_field(pem, "serial")  # noqa: E731
    assert serial(a) == serial(b)
    assert serial(c) != serial(a)


def test_ephemeral_ca_differs_per_instance(sluice, sluice_factory, pki, upstreams):
    other = sluice_factory(th.base_config(pki, upstreams))
    fp = lambda p: th.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256",  # noqa: E731
                           "-in", p]).stdout
    assert fp(other.ca_path) != fp(sluice.ca_path)


def test_ca_init_creates_and_refuses_overwrite(sluice_bin, tmp_path):
    cert, key = str(tmp_path / "ca.pem"), str(tmp_path / "ca.key")
    p = subprocess.run([sluice_bin, "ca", "init", "--cert", cert, "--key", key],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert re.search(r"CA:TRUE", th.x509_text(cert))
    before = (open(cert).read(), open(key).read())
    p = subprocess.run([sluice_bin, "ca", "init", "--cert", cert, "--key", key],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert (open(cert).read(), open(key).read()) == before
    assert "exist" in (p.stdout + p.stderr).lower()


def persistent_ca(tmp_path):
    d = str(tmp_path / "persistent")
    os.makedirs(d)
    return th.make_ca(d, "ca", "sluice-test persistent CA")


def test_persistent_ca_is_used(sluice_factory, pki, upstreams, tmp_path):
    cert, key = persistent_ca(tmp_path)
    cfg = th.base_config(pki, upstreams)
    cfg["tls"].update(ca_cert=cert, ca_key=key)
    s = sluice_factory(cfg)
    leaf = fetch_leaf(s.port, "secure.test", cert)
    assert th.x509_field(leaf, "issuer") == "CN=sluice-test persistent CA"
    with open(s.ca_path) as a, open(cert) as b:  # ca_out gets the loaded CA
        assert th.x509_field(a.read(), "fingerprint") == th.x509_field(b.read(), "fingerprint")


def test_readable_ca_key_is_refused(sluice_factory, pki, upstreams, tmp_path):
    cert, key = persistent_ca(tmp_path)
    os.chmod(key, 0o644)
    cfg = th.base_config(pki, upstreams)
    cfg["tls"].update(ca_cert=cert, ca_key=key)
    s = sluice_factory(cfg, start=False)
    with pytest.raises(RuntimeError) as e:
        s.start()
    msg = str(e.value)
    assert "exited with" in msg, msg
    assert key in msg, msg
    assert "chmod 600" in msg or "0600" in msg or "mode" in msg, msg


def test_non_ca_certificate_is_refused(sluice_factory, pki, upstreams, tmp_path):
    """A leaf (CA:FALSE) given as tls.ca_cert is refused at start."""
    key = str(tmp_path / "leaf.key")
    with open(pki.secure[1]) as src, open(key, "w") as dst:
        dst.write(src.read())
    os.chmod(key, 0o600)
    cfg = th.base_config(pki, upstreams)
    cfg["tls"].update(ca_cert=pki.secure[0], ca_key=key)
    s = sluice_factory(cfg, start=False)
    with pytest.raises(RuntimeError) as e:
        s.start()
    assert "exited with" in str(e.value), e.value
    assert "CA" in str(e.value).split("exited with", 1)[1], e.value


def test_ca_show_prints_certificate_and_fingerprint(sluice_bin, tmp_path):
    """`sluice ca show --cert FILE` (interface guessed from `ca init`)."""
    cert, _ = persistent_ca(tmp_path)
    p = subprocess.run([sluice_bin, "ca", "show", "--cert", cert], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    fp = th.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert]).stdout
    assert fp.strip().split("=", 1)[1] in p.stdout.upper()
    assert th.PEM_RE.search(p.stdout)
