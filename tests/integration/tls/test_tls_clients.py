"""Real clients through sluice's TLS interception: each trusts only sluice's
CA (written to tls.ca_out) and reaches https://secure.test via the proxy."""

import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import textwrap
import uuid

import pytest

import tlshelpers as th

URL = "https://secure.test/hello"
HELLO = "hello from secure\n"


def curl(sluice, *args, env=None, timeout=30):
    cmd = ["curl", "-sS", "--max-time", str(timeout - 5), "--proxy", sluice.proxy, *args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)


def test_curl_get(sluice, client_env):
    p = curl(sluice, "--cacert", sluice.ca_path, URL, env=client_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == HELLO


def test_curl_needs_sluice_ca(sluice, pki, client_env):
    """The same request trusting only the upstream's CA fails verification:
    the client really is talking to sluice's leaf, not the upstream."""
    p = curl(sluice, "--cacert", pki.ca, URL, env=client_env)
    assert p.returncode == 60, (p.returncode, p.stderr)  # CURLE_PEER_FAILED_VERIFICATION


def test_curl_request_headers_reach_upstream(sluice, upstreams, client_env):
    p = curl(sluice, "--cacert", sluice.ca_path, "-H", "X-Test-Header: through-the-tunnel",
             "https://secure.test/echo?q=1", env=client_env)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    hdrs = {k.lower(): v for k, v in doc["headers"]}
    assert doc["path"] == "/echo?q=1"
    assert hdrs["host"] == "secure.test"
    assert hdrs["x-test-header"] == "through-the-tunnel"
    assert not any(k.startswith("proxy-") for k in hdrs)


def test_curl_large_body(sluice, client_env):
    n = 8 * 1024 * 1024 + 13
    p = curl(sluice, "--cacert", sluice.ca_path, f"https://secure.test/big?n={n}",
             env=client_env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == n
    assert hashlib.sha256(p.stdout).digest() == hashlib.sha256(th.big_body(n)).digest()


def test_curl_chunked_response(sluice, client_env):
    p = curl(sluice, "--cacert", sluice.ca_path, "-i", "https://secure.test/chunked",
             env=client_env)
    assert p.returncode == 0, p.stderr
    head, body = p.stdout.split(b"\r\n\r\n", 2)[1:]  # [CONNECT reply, head, body]
    assert body == b"".join(th.CHUNKS)
    assert head.startswith(b"HTTP/1.1 200")


def test_curl_post_body_upload(sluice, client_env, tmp_path):
    data = os.urandom(300 * 1024)
    f = tmp_path / "upload.bin"
    f.write_bytes(data)
    p = curl(sluice, "--cacert", sluice.ca_path, "--data-binary", f"@{f}",
             "-H", "Content-Type: application/octet-stream", "https://secure.test/echo",
             env=client_env)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["method"] == "POST"
    assert doc["body_len"] == len(data)
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_curl_chunked_upload(sluice, client_env):
    data = b"streamed upload " * 4096
    p = subprocess.run(["curl", "-sS", "--max-time", "25", "--proxy", sluice.proxy, "--cacert",
                        sluice.ca_path, "-H", "Transfer-Encoding: chunked", "--data-binary",
                        "@-", "https://secure.test/echo"],
                       input=data, capture_output=True, timeout=30, env=client_env)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


def run_python(code, env, timeout=30):
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_requests_verify_argument(sluice):
    requests = pytest.importorskip("requests")
    r = requests.get(URL, proxies={"https": sluice.proxy}, verify=sluice.ca_path, timeout=20)
    assert r.status_code == 200
    assert r.text == HELLO


def test_requests_env_ca_bundle(sluice, client_env):
    """requests configured only through the environment, as in a sandbox."""
    pytest.importorskip("requests")
    env = dict(client_env, HTTPS_PROXY=sluice.proxy, REQUESTS_CA_BUNDLE=sluice.ca_path)
    out = run_python("""
        import json, requests
        s = requests.Session()
        a = s.get("https://secure.test/hello", timeout=20)
        b = s.get("https://secure.test/echo", headers={"X-From": "requests"}, timeout=20)
        print(json.dumps([a.status_code, a.text, b.json()]))
    """, env)
    assert out[0] == 200 and out[1] == HELLO
    assert ["X-From", "requests"] in out[2]["headers"]


def test_httpx_verify_argument(sluice):
    httpx = pytest.importorskip("httpx")
    try:
        client = httpx.Client(proxy=sluice.proxy, verify=sluice.ca_path, timeout=20)
    except TypeError:  # httpx < 0.26 spells it proxies=
        client = httpx.Client(proxies=sluice.proxy, verify=sluice.ca_path, timeout=20)
    with client:
        r = client.get(URL)
        r2 = client.get("https://secure.test/chunked")
    assert r.status_code == 200 and r.text == HELLO
    assert r2.content == b"".join(th.CHUNKS)


def test_httpx_env_ssl_cert_file(sluice, client_env):
    pytest.importorskip("httpx")
    env = dict(client_env, HTTPS_PROXY=sluice.proxy, SSL_CERT_FILE=sluice.ca_path)
    out = run_python("""
        import json, httpx
        r = httpx.get("https://secure.test/hello", timeout=20)
        print(json.dumps([r.status_code, r.text]))
    """, env)
    assert out == [200, HELLO]


NODE_FETCH = """
const { ProxyAgent, fetch } = require('undici');
const agent = new ProxyAgent(process.env.PROXY);
(async () => {
  try {
    const r = await fetch(process.argv[1], { dispatcher: agent });
    console.log(JSON.stringify({ status: r.status, body: await r.text() }));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e.cause ? e.cause.code || e.cause : e) }));
  }
  await agent.close();
})();
"""


def node_fetch(undici, env, url):
    p = subprocess.run(["node", "-e", NODE_FETCH, url], capture_output=True, text=True,
                       timeout=30, env=dict(env, NODE_PATH=os.path.join(undici, "node_modules")))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_node_fetch_proxy_agent(sluice, client_env, undici):
    out = node_fetch(undici, dict(client_env, PROXY=sluice.proxy,
                                  NODE_EXTRA_CA_CERTS=sluice.ca_path), URL)
    assert out == {"status": 200, "body": HELLO}


def test_node_fetch_without_ca_is_refused(sluice, client_env, undici):
    out = node_fetch(undici, dict(client_env, PROXY=sluice.proxy), URL)
    # Node's code for a leaf whose issuer it does not have (sluice sends the
    # leaf alone, so it is not SELF_SIGNED_CERT_IN_CHAIN).
    assert out.get("error") in ("UNABLE_TO_VERIFY_LEAF_SIGNATURE",
                                "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"), out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["config", "env"])
def test_git_clone(sluice, client_env, git_repo, tmp_path, how):
    """git over HTTPS (dumb protocol) through the proxy: http.sslCAInfo or
    GIT_SSL_CAINFO naming sluice's CA."""
    dest = tmp_path / "clone"
    env = dict(client_env)
    cmd = ["git", "-c", f"http.proxy={sluice.proxy}"]
    if how == "config":
        cmd += ["-c", f"http.sslCAInfo={sluice.ca_path}"]
    else:
        env["GIT_SSL_CAINFO"] = sluice.ca_path
    cmd += ["clone", "-q", "https://secure.test/repo.git", str(dest)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=50, env=env)
    assert p.returncode == 0, p.stderr
    assert (dest / "README.txt").read_text() == git_repo[1]


def test_http_client_keep_alive(sluice, upstreams):
    """Python's http.client with set_tunnel: several requests on one
    intercepted TLS connection, each one reaching the upstream."""
    ctx = ssl.create_default_context(cafile=sluice.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", sluice.port, context=ctx, timeout=20)
    conn.set_tunnel("secure.test", 443)
    tag = uuid.uuid4().hex
    socks = set()
    for i in range(5):
        conn.request("GET", f"/echo?tag={tag}&i={i}", headers={"Connection": "keep-alive"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body
        assert json.loads(body)["path"] == f"/echo?tag={tag}&i={i}"
        socks.add(id(conn.sock))
    conn.request("HEAD", f"/hello?tag={tag}&i=head")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    assert r.getheader("Content-Length") == str(len(HELLO))
    socks.add(id(conn.sock))
    conn.close()
    assert len(socks) == 1, "http.client reconnected: the tunnel was not kept alive"
    seen = [q["path"] for q in upstreams["secure"].requests if tag in q["path"]]
    assert seen == [f"/echo?tag={tag}&i={i}" for i in range(5)] + [f"/hello?tag={tag}&i=head"]
