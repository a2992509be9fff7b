#!/usr/bin/env python3
"""sluice idle-connection bench: hold N (10,000) idle keep-alive client
connections open through the proxy, each after one completed proxied
request, and measure the proxy's RSS per connection; also its RSS idle.
Checks that no connection was dropped and that each one still serves a
second request at the end. Targets (issue 3): < 64 KiB per idle
connection, < 20 MiB RSS idle. Normally started through bench/idle/run.sh."""

import argparse
import datetime
import errno
import json
import os
import resource
import selectors
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))

import lib  # noqa: E402
import run as proxyrun  # noqa: E402
from lib import BenchError, log  # noqa: E402

TARGET_PER_CONN_KIB = 64
TARGET_IDLE_MIB = 20
SLUICE_IDLE_EXTRA = """limits:
  max_connections: 20000
timeouts:
  idle: 300s
"""


class Conn:
    __slots__ = ("sock", "out", "inbuf", "state", "done")

    def __init__(self, sock, req):
        self.sock = sock
        self.out = req
        self.inbuf = b""
        self.state = "connecting"
        self.done = 0  # completed responses


def _response_complete(buf, want_len):
    """Return bytes consumed by one complete 200 response of want_len bytes,
    0 if incomplete; raise BenchError on anything else."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return 0
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split()
    if len(parts) < 2 or parts[1] != "200":
        raise BenchError(f"unexpected response: {head[0]!r}")
    n = None
    for ln in head[1:]:
        k, _, v = ln.partition(":")
        if k.strip().lower() == "content-length":
            n = int(v.strip())
        if k.strip().lower() == "connection" and v.strip().lower() == "close":
            raise BenchError("proxy answered Connection: close (not keep-alive)")
    if n is None:
        raise BenchError("response without Content-Length")
    if n != want_len:
        raise BenchError(f"body length {n}, want {want_len}")
    total = end + 4 + n
    return total if len(buf) >= total else 0


def request_all(conns, req, want_len, concurrency, open_port=None, n_open=0, timeout=120.0):
    """Drive requests over `conns` (and open `n_open` new connections to
    open_port first), at most `concurrency` in flight, until every
    connection has one more completed response. Returns the list of
    connections; raises BenchError on any error."""
    sel = selectors.DefaultSelector()
    pending = list(conns)
    for c in pending:
        c.out = req
        c.state = "sending"
    to_open = n_open
    active = 0
    finished = []
    deadline = time.monotonic() + timeout

    def launch():
        nonlocal to_open, active
        while active < concurrency and (pending or to_open):
            if pending:
                c = pending.pop()
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                rc = s.connect_ex(("127.0.0.1", open_port))
                if rc not in (0, errno.EINPROGRESS):
                    raise BenchError(f"connect #{len(finished) + active}: {os.strerror(rc)}")
                c = Conn(s, req)
                to_open -= 1
            c.inbuf = b""
            sel.register(c.sock, selectors.EVENT_WRITE, c)
            active += 1

    launch()
    while active:
        if time.monotonic() > deadline:
            raise BenchError(f"timed out with {active} requests in flight")
        for key, ev in sel.select(1.0):
            c = key.data
            if ev & selectors.EVENT_WRITE:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise BenchError(f"connect: {os.strerror(err)}")
                try:
                    n = c.sock.send(c.out)
                except BlockingIOError:
                    continue
                except OSError as e:
                    raise BenchError(f"send: {e}")
                c.out = c.out[n:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                raise BenchError(f"recv after {len(finished)} completed: {e}")
            if not data:
                raise BenchError(
                    f"proxy closed a connection mid-request after {len(finished)} completed"
                )
            c.inbuf += data
            used = _response_complete(c.inbuf, want_len)
            if used:
                if len(c.inbuf) != used:
                    raise BenchError("extra bytes after the response")
                c.inbuf = b""
                c.done += 1
                sel.unregister(c.sock)
                finished.append(c)
                active -= 1
                launch()
    sel.close()
    return finished


def count_dropped(conns, kinds=None):
    """Connections that became readable while idle: EOF (closed by the
    proxy), reset or unsolicited bytes. All count as dropped; when `kinds`
    is a dict, it gets the count per kind and the first unsolicited bytes."""
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    bad = 0
    for key, _ in sel.select(0):
        c = key.data
        try:
            data = c.sock.recv(256, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        except OSError as e:
            kind = f"error: {e.strerror}"
        else:
            kind = "eof" if not data else "data"
            if data and kinds is not None:
                kinds.setdefault("first_data", data[:120].decode("latin-1"))
        bad += 1
        if kinds is not None:
            kinds[kind] = kinds.get(kind, 0) + 1
    sel.close()
    return bad


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sluice", help="sluice binary (default build/sluice)")
    ap.add_argument("--proxy", choices=["sluice", "squid"], default="sluice",
                    help="proxy under test; squid is there to validate the harness")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200,
                    help="requests in flight while opening connections")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds to hold them idle")
    ap.add_argument("--out", default=os.path.join(proxyrun.REPO, "bench", "out"))
    ap.add_argument("--workdir", help="temp dir to use (run.sh passes one)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (run.sh)")
    a = ap.parse_args()

    lib.install_cleanup()
    lib.check_prereqs(["nginx", "taskset"] + (["squid"] if a.proxy == "squid" else []))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.connections + 256
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SystemExit(f"bench: RLIMIT_NOFILE hard limit {hard} < {need}; raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else hard, hard))

    binary = None
    if a.proxy == "sluice":
        binary = proxyrun.find_sluice(a.sluice)
        if binary is None:
            raise SystemExit("bench: no sluice binary (build it, or pass --sluice PATH)")

    tmp = a.workdir or tempfile.mkdtemp(prefix="sluice-idle-")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o755)
    lib.set_pidfile(os.path.join(tmp, "pids"))
    proxyrun.setup_www(tmp)
    size = "1k"
    want = lib.SIZES[size]
    res = {"proxy": a.proxy, "binary": binary, "connections": a.connections,
           "hold_s": a.hold, "ok": False}
    try:
        nginx, nport = proxyrun.start_nginx(tmp, proxyrun.CLIENT_CPU)
        if a.proxy == "sluice":
            proc, port = proxyrun.start_sluice(
                binary, tmp, proxyrun.PROXY_CPU, nport, "file", SLUICE_IDLE_EXTRA
            )
        else:
            proc, port = proxyrun.start_squid(tmp, proxyrun.PROXY_CPU)
        time.sleep(0.5)
        res["rss_start_kib"] = lib.group_rss_kib(proc.pid)
        target = f"http://127.0.0.1:{nport}/{size}.bin"
        host = f"127.0.0.1:{nport}"
        if not lib.preflight(port, target, host, want):
            raise BenchError(f"{a.proxy} does not keep client connections alive")
        time.sleep(0.5)
        res["rss_idle_kib"] = lib.group_rss_kib(proc.pid)
        log(f"{a.proxy} RSS at start {res['rss_start_kib']} KiB, "
            f"after a request {res['rss_idle_kib']} KiB")

        req = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-idle-bench\r\n\r\n"
               ).encode()
        t0 = time.monotonic()
        conns = request_all([], req, want, a.concurrency, open_port=port, n_open=a.connections)
        res["open_s"] = round(time.monotonic() - t0, 2)
        log(f"opened {len(conns)} keep-alive connections, one request each, in {res['open_s']}s")
        time.sleep(2.0)  # let the proxy settle (upstream pool idle, buffers released)
        res["rss_conns_kib"] = lib.group_rss_kib(proc.pid)
        res["proxy_fds"] = fd_count(proc.pid)
        held = a.hold
        while held > 0:
            time.sleep(min(held, 1.0))
            held -= 1.0
            if proc.poll() is not None:
                raise BenchError(f"{a.proxy} exited ({proc.returncode}) while holding connections"
                                 + lib.tail(os.path.join(tmp, "sluice", "sluice.log")))
        res["rss_held_kib"] = lib.group_rss_kib(proc.pid)
        kinds = {}
        res["dropped"] = count_dropped(conns, kinds)
        res["dropped_kinds"] = kinds
        if proc.poll() is not None:
            raise BenchError(f"{a.proxy} exited ({proc.returncode}) while holding connections"
                             f" ({res['dropped']} connections dropped)"
                             + lib.tail(os.path.join(tmp, "sluice", "sluice.log")))
        per = (max(res["rss_conns_kib"], res["rss_held_kib"]) - res["rss_idle_kib"]) / len(conns)
        res["rss_per_conn_kib"] = round(per, 2)
        log(f"RSS with {len(conns)} idle connections {res['rss_held_kib']} KiB "
            f"({res['rss_per_conn_kib']} KiB each), {res['dropped']} dropped {kinds or ''}, "
            f"proxy fds {res['proxy_fds']}")
        # A second request on every connection proves they are all live.
        if res["dropped"] == 0:
            again = request_all(conns, req, want, a.concurrency)
            res["second_request_ok"] = len(again) == len(conns)
        else:
            res["second_request_ok"] = False
        for c in conns:
            c.sock.close()
        res["ok"] = True
    except BenchError as e:
        res["error"] = str(e)
        log(f"FAILED: {e}")
    finally:
        lib.stop_all()

    checks = []
    if res.get("rss_per_conn_kib") is not None:
        checks.append((f"RSS per idle connection < {TARGET_PER_CONN_KIB} KiB",
                       res["rss_per_conn_kib"], res["rss_per_conn_kib"] < TARGET_PER_CONN_KIB))
    if res.get("rss_idle_kib") is not None:
        mib = res["rss_idle_kib"] / 1024
        checks.append((f"RSS idle < {TARGET_IDLE_MIB} MiB", round(mib, 2), mib < TARGET_IDLE_MIB))
    if "dropped" in res:
        checks.append(("no connection dropped", res["dropped"], res["dropped"] == 0))
        checks.append(("second request on each", res.get("second_request_ok"),
                       bool(res.get("second_request_ok"))))
    res["checks"] = [{"check": c, "value": v, "pass": p} for c, v, p in checks]
    print()
    print(f"idle bench: {a.proxy}, {a.connections} keep-alive connections held {a.hold}s")
    for c, v, p in checks:
        print(f"  {c:40s} {str(v):>10s}  {'PASS' if p else 'FAIL'}")
    if "error" in res:
        print(f"  FAILED: {res['error']}")
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outp = os.path.join(a.out, f"idle-{a.proxy}-{stamp}.json")
    res["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    with open(outp, "w") as f:
        json.dump(res, f, indent=2)
    print(f"JSON: {outp}")
    if not a.workdir:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if res["ok"] and all(p for _, _, p in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
