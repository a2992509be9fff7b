"""`sluice check`, reload on SIGHUP and on file change (good and bad configs), SIGTERM drain."""

import os
import re
import signal
import subprocess
import threading
import time

import pytest

from sluice_harness import REPO_ROOT, sluice_bin, to_yaml
from helpers import RawConn, clean_env, request_bytes
from upstream import pattern_bytes

U = "http://upstream.test"

GOOD = """\
listen: ["127.0.0.1:18080"]
workers: 1
log: { level: info }
audit: { path: "-" }
watch: true
limits: { max_head_bytes: 32768, max_headers: 100, max_connections: 10000 }
timeouts: { header_read: 10s, idle: 60s, connect: 10s, response_head: 60s, io_idle: 300s, upstream_idle: 30s, drain: 30s }
policy:
  allow: []
  deny: ["blocked.example"]
  allow_private: false
routes:
  - { host: "upstream.test", to: "127.0.0.1:8080" }
"""


def run_check(path):
    return subprocess.run([sluice_bin(), "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=20, env=clean_env())


def test_check_accepts_good_config(tmp_path):
    p = tmp_path / "good.yaml"
    p.write_text(GOOD)
    r = run_check(p)
    assert r.returncode == 0, r.stderr


def test_check_accepts_generated_test_config(tmp_path, sluice_factory):
    s = sluice_factory(auto_start=False)
    s.write_config(s.make_config(18081))
    r = run_check(s.config_path)
    assert r.returncode == 0, r.stderr


def pos(text, needle, last=False):
    """1-based (line, col) of needle in text."""
    i = text.rfind(needle) if last else text.find(needle)
    assert i >= 0, needle
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def variant(old, new):
    assert old in GOOD
    return GOOD.replace(old, new)


EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_pass_check(path):
    r = run_check(path)
    assert r.returncode == 0, r.stderr


def test_default_config_passes_check(tmp_path):
    r = subprocess.run([sluice_bin(), "run", "--print-default"], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 0, r.stderr
    p = tmp_path / "default.yaml"
    p.write_text(r.stdout)
    r = run_check(p)
    assert r.returncode == 0, r.stderr


# (name, text, needles): the error must name FILE:LINE:COL at one of the needles
# (the offending key or its value; 1-based like every compiler).
BAD = [
    ("unknown_top_level_key", GOOD + "bogus: 1\n", ["bogus"]),
    ("unknown_nested_key", variant("  allow_private: false\n", "  allow_private: false\n  allow_all: true\n"),
     ["allow_all"]),
    ("unknown_key_in_flow_map", variant("log: { level: info }", "log: { level: info, colour: true }"), ["colour"]),
    ("wrong_type_workers", variant("workers: 1", 'workers: "many"'), ["workers", '"many"']),
    ("bad_duration", variant("idle: 60s", "idle: 10parsecs"), ["idle: 10", "10parsecs"]),
    ("bad_log_level", variant("level: info", "level: chatty"), ["level", "chatty"]),
    ("bad_listen_port", variant("127.0.0.1:18080", "127.0.0.1:99999"), ["listen", "[", '"127.0.0.1:99999"']),
    ("bad_listen_host", variant("127.0.0.1:18080", "not-an-ip:18080"), ["listen", "[", '"not-an-ip:18080"']),
    ("deny_not_a_list", variant('deny: ["blocked.example"]', 'deny: "blocked.example"'),
     ["deny", '"blocked.example"']),
    ("bool_wrong", variant("allow_private: false", 'allow_private: "yes please"'),
     ["allow_private", '"yes please"']),
    ("route_missing_to", variant(', to: "127.0.0.1:8080"', ""), ["- {", "{ host"]),
    ("route_bad_to", variant('"127.0.0.1:8080"', '"127.0.0.1:notaport"'), ["to:", '"127.0.0.1:notaport"']),
    ("negative_limit", variant("max_headers: 100", "max_headers: -5"), ["max_headers", "-5"]),
    ("float_workers", variant("workers: 1", "workers: 1.5"), ["workers", "1.5"]),
    ("duplicate_key", GOOD + "workers: 2\n", [("workers", True)]),
]


@pytest.mark.parametrize("name,text,needles", BAD, ids=[b[0] for b in BAD])
def test_check_rejects_bad_config_with_position(tmp_path, name, text, needles):
    p = tmp_path / ("%s.yaml" % name)
    p.write_text(text)
    want = {pos(text, n[0], n[1]) if isinstance(n, tuple) else pos(text, n) for n in needles}
    r = run_check(p)
    assert r.returncode == 1, "exit %d; stderr: %s" % (r.returncode, r.stderr)
    found = re.findall(re.escape(str(p)) + r":(\d+):(\d+): (.+)", r.stderr)
    assert found, "no FILE:LINE:COL message in %r" % r.stderr
    got = {(int(a), int(b)) for a, b, _ in found}
    assert got & want, "expected one of %s:%s, got %r" % (p, sorted(want), r.stderr)


def test_check_rejects_yaml_syntax_error(tmp_path):
    p = tmp_path / "syntax.yaml"
    p.write_text(GOOD.replace('deny: ["blocked.example"]', 'deny: ["blocked.example"'))
    r = run_check(p)
    assert r.returncode == 1
    assert re.search(re.escape(str(p)) + r":\d+:\d+: ", r.stderr), r.stderr


def test_check_missing_file(tmp_path):
    r = run_check(tmp_path / "nope.yaml")
    assert r.returncode != 0
    assert "nope.yaml" in r.stderr


def test_run_refuses_bad_config(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD + "bogus: 1\n")
    r = subprocess.run([sluice_bin(), "run", "-c", str(p)], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode != 0
    assert "%s:14:1" % p in r.stderr


def test_second_instance_on_the_same_port_is_refused(sluice_factory, tmp_path):
    """SO_REUSEPORT would let a second process silently take a share of the
    port's connections: a second sluice must refuse to start, before it
    writes anything (the first instance's CA certificate stays in place)."""
    ca_out = tmp_path / "ca.pem"
    first = sluice_factory(overrides={"tls": {"intercept": True, "ca_out": str(ca_out)}})
    before = ca_out.read_bytes()
    cfg = first.make_config(first.port)
    second = tmp_path / "second.yaml"
    second.write_text(to_yaml(cfg) + "\n")
    r = subprocess.run([sluice_bin(), "run", "-c", str(second)], capture_output=True, text=True,
                       timeout=30, env=clean_env())
    assert r.returncode == 1
    assert "cannot listen on 127.0.0.1:%d: address already in use" % first.port in r.stderr
    assert ca_out.read_bytes() == before
    assert first.alive()
    assert first.get(U + "/fixed", timeout=5).status_code == 200


# ---- reload ----

def wait_for(pred, timeout=6.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def status_of(s, url):
    try:
        return s.get(url, timeout=5).status_code
    except Exception as e:  # noqa: BLE001
        return repr(e)


def deny_upstream(s):
    cfg = s.make_config(s.port)
    cfg["policy"]["deny"] = ["upstream.test"]
    return cfg


def test_sighup_reload_good_config(sluice_factory):
    s = sluice_factory()
    assert status_of(s, U + "/fixed") == 200
    s.write_config(deny_upstream(s))
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: status_of(s, U + "/fixed") == 403), "new policy not applied after SIGHUP"
    # blocked.example is no longer denied in the new config: it now fails as an upstream
    # error (no DNS), proving the whole snapshot was replaced
    assert status_of(s, "http://blocked.example/") == 502
    assert s.alive()


def test_sighup_reload_bad_config_keeps_old(sluice_factory):
    s = sluice_factory()
    assert status_of(s, U + "/fixed") == 200
    before = len(s.stderr())
    bad = to_yaml(deny_upstream(s)) + "\nbogus: 1\n"
    s.write_config(text=bad)
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: "bogus" in s.stderr()[before:] or str(s.config_path) in s.stderr()[before:]), \
        "rejected reload not logged: %r" % s.stderr()[before:]
    time.sleep(0.3)
    assert s.alive()
    assert status_of(s, U + "/fixed") == 200, "bad config partially applied"
    assert status_of(s, "http://blocked.example/") == 403
    # and a later good config still applies
    s.write_config(deny_upstream(s))
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: status_of(s, U + "/fixed") == 403)


def test_reload_keeps_in_flight_request(sluice_factory):
    s = sluice_factory()
    result = {}

    def download():
        r = s.get(U + "/slow?chunks=5&size=1000&delay=0.3", timeout=15)
        result["status"] = r.status_code
        result["body"] = r.content

    t = threading.Thread(target=download)
    t.start()
    time.sleep(0.4)
    s.write_config(deny_upstream(s))
    s.signal(signal.SIGHUP)
    t.join(20)
    assert result.get("status") == 200
    assert result["body"] == pattern_bytes(1000) * 5
    assert wait_for(lambda: status_of(s, U + "/fixed") == 403)


def test_file_change_reload_in_place(sluice_factory):
    s = sluice_factory({"watch": True})
    assert status_of(s, U + "/fixed") == 200
    time.sleep(0.2)
    with open(s.config_path, "w") as f:
        f.write(to_yaml(deny_upstream(s)) + "\n")
    assert wait_for(lambda: status_of(s, U + "/fixed") == 403, timeout=8), "file change not picked up"


def test_file_change_reload_atomic_rename(sluice_factory):
    s = sluice_factory({"watch": True})
    assert status_of(s, U + "/fixed") == 200
    time.sleep(0.2)
    tmp = s.config_path.with_suffix(".tmp")
    tmp.write_text(to_yaml(deny_upstream(s)) + "\n")
    os.rename(tmp, s.config_path)
    assert wait_for(lambda: status_of(s, U + "/fixed") == 403, timeout=8), "renamed-over config not picked up"
    # the watch survives the rename: a second change is seen too
    cfg = s.make_config(s.port)
    tmp.write_text(to_yaml(cfg) + "\n")
    os.rename(tmp, s.config_path)
    assert wait_for(lambda: status_of(s, U + "/fixed") == 200, timeout=8), "second change after rename missed"


def test_file_change_bad_config_keeps_old(sluice_factory):
    s = sluice_factory({"watch": True})
    assert status_of(s, U + "/fixed") == 200
    with open(s.config_path, "w") as f:
        f.write(to_yaml(deny_upstream(s)) + "\nbogus: 1\n")
    time.sleep(2.0)
    assert s.alive()
    assert status_of(s, U + "/fixed") == 200
    with open(s.config_path, "w") as f:
        f.write(to_yaml(deny_upstream(s)) + "\n")
    assert wait_for(lambda: status_of(s, U + "/fixed") == 403, timeout=8)


def test_no_reload_on_file_change_without_watch(sluice_factory):
    s = sluice_factory({"watch": False})
    with open(s.config_path, "w") as f:
        f.write(to_yaml(deny_upstream(s)) + "\n")
    time.sleep(2.0)
    assert status_of(s, U + "/fixed") == 200


# ---- SIGTERM ----

def test_sigterm_drains_in_flight_then_exits_0(sluice_factory):
    s = sluice_factory({"timeouts": {"drain": "10s"}})
    result = {}

    def download():
        try:
            r = s.get(U + "/slow?chunks=6&size=2000&delay=0.4", timeout=20)
            result["status"] = r.status_code
            result["body"] = r.content
        except Exception as e:  # noqa: BLE001
            result["error"] = repr(e)
        result["done"] = time.monotonic()

    t = threading.Thread(target=download)
    t.start()
    time.sleep(0.5)
    s.signal(signal.SIGTERM)
    t.join(20)
    assert "error" not in result, result.get("error")
    assert result.get("status") == 200
    assert result["body"] == pattern_bytes(2000) * 6
    rc = s.proc.wait(10)
    assert rc == 0, "exit code %d after drain" % rc


def test_sigterm_stops_accepting(sluice_factory):
    s = sluice_factory({"timeouts": {"drain": "10s"}})
    t = threading.Thread(target=lambda: s.get(U + "/slow?chunks=4&size=10&delay=0.5", timeout=20))
    t.start()
    time.sleep(0.4)
    s.signal(signal.SIGTERM)
    time.sleep(0.4)
    assert s.alive(), "exited while a request was in flight"
    served = False
    try:
        with RawConn(s.port, timeout=2) as c:
            c.send(request_bytes("GET", U + "/fixed?n=1", [("Host", "upstream.test")]))
            served = c.read_response().status == 200
    except Exception:  # noqa: BLE001
        served = False
    assert not served, "new request served while draining"
    t.join(20)
    assert s.proc.wait(10) == 0


def test_sigterm_with_idle_keepalive_exits_promptly(sluice_factory):
    s = sluice_factory({"timeouts": {"drain": "20s"}})
    with RawConn(s.port) as c:
        c.send(request_bytes("GET", U + "/fixed?n=1", [("Host", "upstream.test")]))
        c.read_response()
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        rc = s.proc.wait(10)
        assert rc == 0
        assert time.monotonic() - t0 < 3.0, "an idle keep-alive connection held the drain"


def test_sigterm_drain_timeout_bounds_exit(sluice_factory):
    s = sluice_factory({"timeouts": {"drain": "1s", "response_head": "30s"}})
    t = threading.Thread(target=lambda: status_of(s, U + "/hang"))
    t.start()
    time.sleep(0.4)
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    s.proc.wait(10)
    assert time.monotonic() - t0 < 4.0
    t.join(10)


def test_reload_applies_limits_and_routes(sluice_factory, upstream):
    s = sluice_factory()
    big = [("X-Big", "a" * 20000)]
    with RawConn(s.port) as c:
        c.send(request_bytes("GET", U + "/fixed?n=1", [("Host", "upstream.test")] + big))
        assert c.read_response().status == 200
    cfg = s.make_config(s.port)
    cfg["limits"]["max_head_bytes"] = 8192
    cfg["routes"].append({"host": "second.test", "to": upstream.addr})
    s.write_config(cfg)
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: status_of(s, "http://second.test/fixed?n=1") == 200), "new route not applied"

    def big_head_status():
        with RawConn(s.port) as c:
            c.send(request_bytes("GET", U + "/fixed?n=1", [("Host", "upstream.test")] + big))
            return c.read_response().status
    assert big_head_status() == 400, "reloaded max_head_bytes not applied"


def test_many_reloads_under_load(sluice_factory, upstream):
    s = sluice_factory()
    stop = threading.Event()
    errors = []

    def load():
        with s.session() as sess:
            while not stop.is_set():
                try:
                    r = sess.get(U + "/fixed?n=100", timeout=5)
                    if r.status_code != 200 or r.content != pattern_bytes(100):
                        errors.append((r.status_code, r.headers.get("X-Sluice-Error"), r.text[:200]))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            cfg = s.make_config(s.port)
            cfg["policy"]["deny"] = ["blocked.example", "other%d.example" % i]
            s.write_config(cfg)
            s.signal(signal.SIGHUP)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert s.alive()
    assert not errors, errors[:5]
    assert wait_for(lambda: status_of(s, "http://other19.example/") == 403)
