#!/usr/bin/env python3
"""sluice inspection bench (issue 8, Performance), in one run:

1. keep-alive 10 KiB GETs (text bodies) through sluice with every
   inspection on vs sluice with inspection off    target: on >= 80% of off
2. the same with a new query cursor on every request: split-secret history
   on vs off (the history's cost on its worst common case)
3. 1 MiB text downloads through sluice (inspection on) vs directly against
   nginx                                          target: >= 50% of direct
4. memory per connection: RSS of sluice holding N connections that are
   downloading large bodies (the client reads 64 KiB, then stops) vs N that
   fetched a small one; per-connection memory must not grow with the body.

Reuses bench/proxy (lib.py: processes, ports, /proc; run.py: nginx, sluice,
wrk, measure). Normally started through bench/inspect/run.sh."""

import argparse
import datetime
import json
import os
import random
import socket
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))

import lib  # noqa: E402
import run as proxybench  # noqa: E402
from lib import BenchError, log  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SIZES = {"10k": 10 * 1024, "1m": 1024 * 1024, "16m": 16 * 1024 * 1024, "64m": 64 * 1024 * 1024}
INSPECT_OFF = "inspect:\n  enabled: false\n"
HISTORY_OFF = "inspect:\n  history:\n    enabled: false\n"

WORDS = (
    "the committee met on tuesday to review quarterly figures and most members agreed that "
    "results were better than expected sales in northern region grew steadily although costs "
    "rose faster anyone had planned for at start of year after long discussion about hiring "
    "chair proposed team revisit budget spring once new office opened several people noted "
    "documentation was out date so small group volunteered rewrite guides before next release"
).split()


def text(n, seed):
    """n bytes of English-looking prose (the response rules scan it fully)."""
    rnd = random.Random(seed)
    out, size = [], 0
    while size < n:
        line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 16))).capitalize() + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def setup_www(tmp):
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    mib = text(1024 * 1024, 1)
    for name, n in SIZES.items():
        with open(os.path.join(www, f"{name}.bin"), "wb") as f:
            if n <= len(mib):
                f.write(text(n, n))
            else:
                for _ in range(n // len(mib)):
                    f.write(mib)
        os.chmod(os.path.join(www, f"{name}.bin"), 0o644)
    os.chmod(www, 0o755)


def start_nginx(tmp):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    port = lib.free_port()
    conf = lib.render(os.path.join(HERE, "nginx.conf.in"), os.path.join(d, "nginx.conf"),
                      TMP=tmp, PORT=port)
    p = lib.start("nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                  cpu=proxybench.CLIENT_CPU, log_path=os.path.join(d, "stdout.log"),
                  rlimit_nofile=65536)
    lib.wait_port(port, p, "nginx", log_path=os.path.join(d, "error.log"))
    return p, port


def sluice(binary, tmp, nginx_port, extra=""):
    return proxybench.start_sluice(binary, tmp, proxybench.PROXY_CPU, nginx_port, "file", extra)


# --------------------------------------------------------------------------
# memory per connection


def hold_connections(port, nginx_port, size, n, read_bytes):
    """Open n connections through sluice, GET /size.bin on each, read
    `read_bytes` of the response (all of it when None) and keep them open."""
    socks = []
    req = (f"GET http://127.0.0.1:{nginx_port}/{size}.bin HTTP/1.1\r\n"
           f"Host: 127.0.0.1:{nginx_port}\r\nUser-Agent: sluice-bench\r\n\r\n").encode()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(req)
        socks.append(s)
    for s in socks:
        want = read_bytes if read_bytes is not None else None
        if want is None:
            _, _, body, _ = lib.read_response(s)
            if len(body) != SIZES[size]:
                raise BenchError(f"memory: {size}: got {len(body)} bytes")
            continue
        got = 0
        while got < want:
            chunk = s.recv(min(65536, want - got))
            if not chunk:
                raise BenchError(f"memory: {size}: connection closed after {got} bytes")
            got += len(chunk)
    return socks


def settled_rss(pgid, timeout=8.0):
    """RSS once it stops growing (two samples 0.5 s apart within 1%)."""
    prev = lib.group_rss_kib(pgid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = lib.group_rss_kib(pgid)
        if abs(cur - prev) <= prev / 100:
            return cur
        prev = cur
    return prev


# 16 MiB and 64 MiB are both far beyond what the kernel's socket buffers on
# the path absorb, so sluice's own buffers fill up to the backpressure marks.
MEM_CASES = (("on", "", "10k", None), ("on", "", "16m", 65536), ("on", "", "64m", 65536),
             ("off", INSPECT_OFF, "64m", 65536))


def memory(binary, tmp, nginx_port, n):
    """Each case on a fresh sluice: warm up, RSS, hold n connections, RSS."""
    res = {"connections": n}
    for mode, extra, size, read in MEM_CASES:
        proc, port = sluice(binary, tmp, nginx_port, extra)
        try:
            proxybench.run_wrk(tmp, port, f"http://127.0.0.1:{nginx_port}/10k.bin",
                               f"127.0.0.1:{nginx_port}", 1, n, 1, proxybench.CLIENT_CPU,
                               "mem-warm")
            base = settled_rss(proc.pid)
            socks = hold_connections(port, nginx_port, size, n, read)
            rss = settled_rss(proc.pid)  # sluice fills its buffers up to the backpressure marks
            for s in socks:
                s.close()
        finally:
            lib.stop(proc)
        key = f"{mode}_{size}"
        res[key] = {"rss_base_kib": base, "rss_kib": rss,
                    "per_conn_kib": round((rss - base) / n, 1)}
        log(f"memory   inspection {mode:3s} {size:4s} {n} connections "
            f"{'done' if read is None else 'in flight'}: RSS {rss} KiB (base {base}), "
            f"{res[key]['per_conn_kib']:.1f} KiB per connection")
    return res


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", help="sluice binary (default: build/sluice)")
    ap.add_argument("--duration", type=int, default=8, help="measured seconds per run (8)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds per run (2)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections, 10 KiB (32)")
    ap.add_argument("--dl-connections", type=int, default=8, help="wrk connections, 1 MiB (8)")
    ap.add_argument("--mem-connections", type=int, default=64,
                    help="connections held for the memory test (64)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat; ratios use medians")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    ap.add_argument("--workdir", help="temp dir to use (run.sh passes one)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()

    lib.install_cleanup()
    lib.check_prereqs(["nginx", "wrk", "taskset"])
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench: needs 2 CPUs (sluice on CPU 0, wrk + nginx on CPU 1)")
    binary = proxybench.find_sluice(a.sluice)
    if binary is None:
        raise SystemExit("bench: no sluice binary (build it or pass --sluice PATH)")
    tmp = a.workdir or tempfile.mkdtemp(prefix="sluice-inspect-bench-")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o755)
    lib.set_pidfile(os.path.join(tmp, "pids"))
    log(f"workdir {tmp}")
    setup_www(tmp)
    ka = types.SimpleNamespace(warmup=a.warmup, duration=a.duration,
                               connections=a.connections, threads=1)
    dl = types.SimpleNamespace(warmup=a.warmup, duration=a.duration,
                               connections=a.dl_connections, threads=1)
    cursor = os.path.join(HERE, "wrk-cursor.lua")
    nginx, nginx_port = start_nginx(tmp)
    runs = []
    mem = None

    def one(name, extra, size, args, script=None, direct=False):
        proc, port = (None, nginx_port) if direct else sluice(binary, tmp, nginx_port, extra)
        try:
            if not direct:
                lib.preflight(port, f"http://127.0.0.1:{nginx_port}/{size}.bin",
                              f"127.0.0.1:{nginx_port}", SIZES[size])
            r = proxybench.measure("direct" if direct else name, proc, port, nginx_port, size,
                                   args, tmp, True, script)
            r["case"] = name
            r["mib_s"] = r["bytes"] / r["duration_s"] / 2**20 if r["duration_s"] else 0
            runs.append(r)
            if r["error_count"]:
                raise BenchError(f"{name}: wrk errors {r['errors']} (refusals count as status)")
        finally:
            if proc is not None:
                lib.stop(proc)

    try:
        for rnd in range(a.rounds):
            one("on-10k", "", "10k", ka)
            one("off-10k", INSPECT_OFF, "10k", ka)
            one("history-on-cursor", "", "10k", ka, cursor)
            one("history-off-cursor", HISTORY_OFF, "10k", ka, cursor)
            one("direct-1m", "", "1m", dl, direct=True)
            one("on-1m", "", "1m", dl)
        mem = memory(binary, tmp, nginx_port, a.mem_connections)
    finally:
        lib.stop_all()

    def med(case, key):
        v = sorted(r[key] for r in runs if r["case"] == case)
        return v[len(v) // 2] if v else 0.0

    ratios = {
        "keepalive_10k_on_vs_off": med("on-10k", "rps") / med("off-10k", "rps"),
        "history_cursor_on_vs_off": med("history-on-cursor", "rps")
        / med("history-off-cursor", "rps"),
        "download_1m_on_vs_direct": med("on-1m", "mib_s") / med("direct-1m", "mib_s"),
        "memory_64m_vs_16m_per_conn": (mem["on_64m"]["per_conn_kib"]
                                       / mem["on_16m"]["per_conn_kib"]
                                       if mem["on_16m"]["per_conn_kib"] else None),
    }
    print()
    print(f"sluice inspection bench: {a.duration}s runs (+{a.warmup}s warm-up), "
          f"{a.rounds} round(s); sluice on CPU {proxybench.PROXY_CPU}, wrk + nginx on CPU "
          f"{proxybench.CLIENT_CPU}; loadavg {os.getloadavg()[0]:.1f}")
    print()
    print("| case | req/s | MiB/s | p50 | p99 | sluice CPU/req | other load CPU0 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in ("on-10k", "off-10k", "history-on-cursor", "history-off-cursor", "direct-1m",
                 "on-1m"):
        r = [x for x in runs if x["case"] == case][-1]
        cpu = f"{med(case, 'cpu_us_per_req'):.1f} us" if r["cpu_us_per_req"] else "-"
        print(f"| {case} | {med(case, 'rps'):.0f} | {med(case, 'mib_s'):.1f} | "
              f"{proxybench.fmt_us(med(case, 'p50_us'))} | {proxybench.fmt_us(med(case, 'p99_us'))}"
              f" | {cpu} | {proxybench.fmt(r['other_load_cpu0_pct'], '.0f')}% |")
    print()
    print(f"memory per connection, {mem['connections']} connections, each case on a fresh "
          "sluice (RSS growth / connections):")
    for mode, _, size, read in MEM_CASES:
        m = mem[f"{mode}_{size}"]
        print(f"  inspection {mode:3s} {size:4s} {'done, idle' if read is None else 'in flight'}"
              f": {m['per_conn_kib']:.0f} KiB")
    print()
    tgt = {"keepalive_10k_on_vs_off": 0.8, "download_1m_on_vs_direct": 0.5}
    for k, v in ratios.items():
        t = tgt.get(k)
        verdict = "" if t is None or v is None else ("  (target >= %.2f: %s)" %
                                                      (t, "met" if v >= t else "MISSED"))
        print(f"{k:28s} {'-' if v is None else f'{v:.2f}'}{verdict}")
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(a.out, f"inspect-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"runs": runs, "memory": mem, "ratios": ratios,
                   "machine": proxybench.machine_info()}, f, indent=1)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
