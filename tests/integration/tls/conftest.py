"""Fixtures for the TLS interception integration tests (issue 5).

One PKI, one set of upstream servers and one sluice are shared by the whole
session; tests that need another configuration start their own sluice with
`sluice_factory`. See README.md in this directory.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tlshelpers as th  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_TIMEOUT = 60
NODE_CACHE = os.environ.get("SLUICE_TEST_NODE_CACHE", "/tmp/sluice-tls-tests-cache/node-undici6")


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): fail the test after this long")


@pytest.fixture(autouse=True)
def _test_timeout(request):
    """Every test has a deadline (SIGALRM; pytest-timeout is not installed)."""
    m = request.node.get_closest_marker("timeout")
    seconds = int(m.args[0]) if m else DEFAULT_TIMEOUT

    def expired(signum, frame):
        pytest.fail(f"test exceeded its {seconds}s timeout", pytrace=False)

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def sluice_bin():
    path = os.environ.get("SLUICE_BIN", os.path.join(REPO, "build", "sluice"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"no sluice binary at {path}: build it (ninja -C build) or set SLUICE_BIN")
    return path


@pytest.fixture(scope="session")
def tmp_session(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def pki(tmp_session):
    d = os.path.join(tmp_session, "pki")
    os.makedirs(d)
    return th.Pki(d)


@pytest.fixture(scope="session")
def git_repo(tmp_session):
    """A bare repository prepared for git's dumb HTTP protocol; returns
    (bare dir, the text of README.txt in its one commit)."""
    work = os.path.join(tmp_session, "repo-src")
    bare = os.path.join(tmp_session, "repo.git")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=tmp_session,
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.test",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.test")
    text = "cloned through sluice's TLS interception\n"
    os.makedirs(work)
    with open(os.path.join(work, "README.txt"), "w") as f:
        f.write(text)
    for cmd in (["git", "init", "-q", "-b", "main", work],
                ["git", "-C", work, "add", "README.txt"],
                ["git", "-C", work, "commit", "-q", "-m", "first"],
                ["git", "clone", "-q", "--bare", work, bare],
                ["git", "-C", bare, "update-server-info"]):
        th.run(cmd, env=env)
    return bare, text


@pytest.fixture(scope="session")
def upstreams(pki, git_repo):
    """Upstream servers by name: TLS ones with the PKI's certificates and a
    plain HTTP one. The `secure` one also serves the git repo at /repo.git/."""
    ups = {
        "secure": th.Upstream("secure", *pki.secure, static_root=git_repo[0]),
        "wrongname": th.Upstream("wrongname", *pki.wrong_name),
        "expired": th.Upstream("expired", *pki.expired),
        "untrusted": th.Upstream("untrusted", *pki.untrusted),
        "pinned": th.Upstream("pinned", *pki.pinned),
        "plain": th.Upstream("plain"),
    }
    yield ups
    for u in ups.values():
        u.stop()


@pytest.fixture(scope="session")
def sluice(sluice_bin, tmp_session, pki, upstreams):
    """The shared sluice: intercepting, with a route per upstream."""
    s = th.Sluice(sluice_bin, os.path.join(tmp_session, "sluice"), th.base_config(pki, upstreams))
    s.start()
    yield s
    s.stop()
    report = s.sanitizer_report()
    assert not report, "sanitizer report from the session sluice:\n" + report


@pytest.fixture
def sluice_factory(sluice_bin, tmp_path):
    """Start extra sluice instances with a given config; stopped afterwards.
    `make(config, start=True)` returns a tlshelpers.Sluice."""
    made = []

    def make(config, start=True, name=None):
        s = th.Sluice(sluice_bin, str(tmp_path / (name or f"sluice{len(made)}")), config)
        made.append(s)
        return s.start() if start else s

    yield make
    for s in made:
        s.stop()
    reports = [r for r in (s.sanitizer_report() for s in made) if r]
    assert not reports, "sanitizer report:\n" + "\n".join(reports)


@pytest.fixture(scope="session")
def client_env(tmp_session):
    """Environment for client subprocesses: no inherited proxy or CA
    settings, a private HOME (git, npm, curl read config from there)."""
    home = os.path.join(tmp_session, "home")
    os.makedirs(home, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
           and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
                         "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
                         "NODE_OPTIONS", "NODE_TLS_REJECT_UNAUTHORIZED")}
    env.update(HOME=home, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    return env


@pytest.fixture(scope="session")
def undici(client_env):
    """A directory whose node_modules holds undici (for ProxyAgent), installed
    once into a cache under /tmp, never into the repository."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed")
    marker = os.path.join(NODE_CACHE, "node_modules", "undici", "package.json")
    if not os.path.exists(marker):
        os.makedirs(NODE_CACHE, exist_ok=True)
        try:
            p = subprocess.run(["npm", "install", "--prefix", NODE_CACHE, "--no-audit",
                                "--no-fund", "--no-save", "undici@6"],
                               capture_output=True, text=True, timeout=150)  # the user npmrc (registry, cafile) applies
        except subprocess.TimeoutExpired:
            pytest.skip("npm install undici@6 timed out: npm registry unreachable?")
        if p.returncode != 0 or not os.path.exists(marker):
            pytest.skip(f"npm install undici@6 failed (registry unreachable?): {p.stderr[-500:]}")
    return NODE_CACHE
