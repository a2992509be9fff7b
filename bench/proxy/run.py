#!/usr/bin/env python3
"""sluice forward-proxy bench: wrk through sluice, squid and tinyproxy, and
directly against nginx, in one run. See bench/README.md and
docs/benchmarks.md. Normally started through bench/proxy/run.sh."""

import argparse
import datetime
import json
import os
import platform
import pwd
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
import parse  # noqa: E402
from lib import BenchError, log  # noqa: E402

REPO = os.path.abspath(os.path.join(lib.HERE, "..", ".."))
ALL_PROXIES = ["direct", "sluice", "squid", "tinyproxy"]
PROXY_CPU = 0  # the proxy under test
CLIENT_CPU = 1  # wrk and nginx


# --------------------------------------------------------------------------
# the upstream


def setup_www(tmp):
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    for name, n in lib.SIZES.items():
        with open(os.path.join(www, f"{name}.bin"), "wb") as f:
            f.write(os.urandom(n))
        os.chmod(os.path.join(www, f"{name}.bin"), 0o644)
    os.chmod(www, 0o755)


def start_nginx(tmp, cpu):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    port = lib.free_port()
    conf = lib.render("nginx.conf.in", os.path.join(d, "nginx.conf"), TMP=tmp, PORT=port)
    logp = os.path.join(d, "stdout.log")
    p = lib.start(
        "nginx",
        ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
        cpu=cpu,
        log_path=logp,
        rlimit_nofile=65536,
    )
    lib.wait_port(port, p, "nginx", log_path=os.path.join(d, "error.log"))
    return p, port


# --------------------------------------------------------------------------
# the proxies: each start_* returns (Popen, port)


def _own_dir(path, user):
    os.makedirs(path, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o755)


def start_squid(tmp, cpu):
    d = os.path.join(tmp, "squid")
    _own_dir(d, "proxy")
    port = lib.free_port()
    conf = lib.render("squid.conf.in", os.path.join(d, "squid.conf"), TMP=tmp, PORT=port)
    logp = os.path.join(d, "stdout.log")
    p = lib.start(
        "squid", ["squid", "-N", "-f", conf], cpu=cpu, log_path=logp, rlimit_nofile=20000
    )
    lib.wait_port(port, p, "squid", timeout=20, log_path=os.path.join(d, "cache.log"))
    return p, port


def start_tinyproxy(tmp, cpu):
    d = os.path.join(tmp, "tinyproxy")
    _own_dir(d, "nobody")
    port = lib.free_port()
    conf = lib.render(
        "tinyproxy.conf.in", os.path.join(d, "tinyproxy.conf"), TMP=tmp, PORT=port
    )
    logp = os.path.join(d, "stdout.log")
    p = lib.start(
        "tinyproxy",
        ["tinyproxy", "-d", "-c", conf],
        cpu=cpu,
        log_path=logp,
        rlimit_nofile=20000,
    )
    lib.wait_port(port, p, "tinyproxy", log_path=os.path.join(d, "tinyproxy.log"))
    return p, port


def sluice_config(tmp, upstream_port, audit="file", extra=""):
    """Render sluice's bench config; returns (path, port)."""
    d = os.path.join(tmp, "sluice")
    os.makedirs(d, exist_ok=True)
    port = lib.free_port()
    audit_path = os.path.join(d, "audit.jsonl") if audit == "file" else "off"
    conf = lib.render(
        "sluice.yaml.in",
        os.path.join(d, "sluice.yaml"),
        PORT=port,
        UPSTREAM=f"127.0.0.1:{upstream_port}",
        AUDIT=audit_path,
    )
    if extra:
        with open(conf, "a") as f:
            f.write(extra)
    return conf, port


def start_sluice(binary, tmp, cpu, upstream_port, audit="file", extra=""):
    conf, port = sluice_config(tmp, upstream_port, audit, extra)
    logp = os.path.join(tmp, "sluice", "sluice.log")
    p = lib.start(
        "sluice", [binary, "run", "-c", conf], cpu=cpu, log_path=logp, rlimit_nofile=20000
    )
    lib.wait_port(port, p, "sluice", log_path=logp)
    return p, port


# --------------------------------------------------------------------------
# wrk


def run_wrk(tmp, port, target, host, duration, conns, threads, cpu, tag, script=None):
    """One wrk run against 127.0.0.1:port. target None = direct (host is
    then the path). `script` replaces wrk.lua (same arguments and output)."""
    logp = os.path.join(tmp, f"wrk-{tag}.log")
    if os.path.exists(logp):
        os.unlink(logp)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        script or os.path.join(lib.HERE, "wrk.lua"),
    ]
    if target is None:
        argv.append(f"http://127.0.0.1:{port}{host}")  # host = path when direct
    else:
        argv += [f"http://127.0.0.1:{port}/", "--", target, host]
    p = lib.start("wrk", argv, cpu=cpu, log_path=logp)
    try:
        p.wait(duration + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk {tag} did not finish")
    finally:
        lib.stop(p)
    with open(logp) as f:
        out = f.read()
    if p.returncode != 0:
        raise BenchError(f"wrk {tag} exited {p.returncode}: {out[-500:]}")
    try:
        return parse.parse(out)
    except ValueError as e:
        raise BenchError(f"wrk {tag}: {e}: {out[-500:]}")


def measure(name, proc, port, nginx_port, size, a, tmp, keepalive=True, script=None):
    """Warm up, then a measured wrk run with the proxy's CPU time around it.
    `script`: another wrk script than wrk.lua (see run_wrk)."""
    path = f"/{size}.bin"
    if name == "direct":
        target, host = None, path
    else:
        target, host = f"http://127.0.0.1:{nginx_port}{path}", f"127.0.0.1:{nginx_port}"
    if a.warmup > 0:
        run_wrk(tmp, port, target, host, a.warmup, a.connections, a.threads, CLIENT_CPU,
                f"{name}-{size}-warm", script)
    cpu0 = lib.group_cpu_seconds(proc.pid) if proc else 0.0
    pin0 = lib.cpu_ticks(PROXY_CPU)
    run0, wait0 = lib.group_schedstat_seconds(proc.pid) if proc else (0.0, 0.0)
    res = run_wrk(tmp, port, target, host, a.duration, a.connections, a.threads,
                  CLIENT_CPU, f"{name}-{size}", script)
    cpu1 = lib.group_cpu_seconds(proc.pid) if proc else 0.0
    pin1 = lib.cpu_ticks(PROXY_CPU)
    run1, wait1 = lib.group_schedstat_seconds(proc.pid) if proc else (0.0, 0.0)
    if proc is not None and proc.poll() is not None:
        raise BenchError(f"{name} died during the {size} run (exit {proc.returncode})")
    res["proxy"] = name
    res["size"] = size
    if proc is not None and res["requests"]:
        res["cpu_s"] = cpu1 - cpu0
        res["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / res["requests"]
    else:
        res["cpu_s"] = None
        res["cpu_us_per_req"] = None
    if proc is not None:
        try:
            res["rss_kib"] = lib.group_rss_kib(proc.pid)
        except (BenchError, OSError):
            res["rss_kib"] = None
    # A proxy without client keep-alive closes silently after each response;
    # wrk then counts one read error per reconnect. Those are not failed
    # requests (they are in the JSON as errors.read), so do not count them.
    counted = {k: v for k, v in res["errors"].items() if keepalive or k != "read"}
    nerr = sum(counted.values())
    res["error_count"] = nerr
    # Noise gauge: how busy the proxy's CPU was with anything but the proxy
    # (other tenants of a shared machine, wrk's softirqs). Percent of the run.
    busy, total = pin1[0] - pin0[0], pin1[1] - pin0[1]
    own = (cpu1 - cpu0) * lib.CLK_TCK
    res["other_load_cpu0_pct"] = round(max(0.0, busy - own) * 100.0 / total, 1) if total else None
    res["loadavg_1m"] = os.getloadavg()[0]
    # Time the proxy was runnable but another task held its CPU, as a share
    # of the run: high means the proxy was starved, not slow.
    res["proxy_runq_wait_pct"] = (
        round((wait1 - wait0) * 100.0 / res["duration_s"], 1)
        if proc is not None and res["duration_s"] else None
    )
    # Cross-check of cpu_us_per_req from schedstat's ns on-CPU time (JSON only).
    res["sched_us_per_req"] = (
        round((run1 - run0) * 1e6 / res["requests"], 1)
        if proc is not None and res["requests"] else None
    )
    log(
        f"{name:9s} {size:4s} {res['rps']:10.0f} req/s  p50 {res['p50_us']:.0f}us  "
        f"p99 {res['p99_us']:.0f}us  cpu/req "
        + (f"{res['cpu_us_per_req']:.1f}us" if res["cpu_us_per_req"] is not None else "-")
        + f"  other load on CPU{PROXY_CPU} {fmt(res['other_load_cpu0_pct'], '.0f')}%"
        + f"  proxy runq wait {fmt(res['proxy_runq_wait_pct'], '.0f')}%"
        + f"  loadavg {res['loadavg_1m']:.1f}"
        + (f"  ERRORS {res['errors']}" if nerr else "")
    )
    return res


# --------------------------------------------------------------------------
# report


def aggregate(runs):
    """Median over rounds for each (proxy, size)."""
    out = {}
    for r in runs:
        out.setdefault((r["proxy"], r["size"]), []).append(r)
    agg = {}
    for key, rs in out.items():
        def med(k):
            vals = [x[k] for x in rs if x.get(k) is not None]
            return statistics.median(vals) if vals else None

        agg[key] = {
            "proxy": key[0],
            "size": key[1],
            "rounds": len(rs),
            "rps": med("rps"),
            "p50_us": med("p50_us"),
            "p99_us": med("p99_us"),
            "cpu_us_per_req": med("cpu_us_per_req"),
            "other_load_cpu0_pct": med("other_load_cpu0_pct"),
            "proxy_runq_wait_pct": med("proxy_runq_wait_pct"),
            "errors": sum(x["error_count"] for x in rs),
            "requests": sum(x["requests"] or 0 for x in rs),
        }
    for (proxy, size), r in agg.items():
        d = agg.get(("direct", size))
        s = agg.get(("squid", size))
        r["rps_vs_direct"] = r["rps"] / d["rps"] if d and d["rps"] else None
        r["rps_vs_squid"] = r["rps"] / s["rps"] if s and s["rps"] else None
        r["cpu_vs_squid"] = (
            r["cpu_us_per_req"] / s["cpu_us_per_req"]
            if s and s["cpu_us_per_req"] and r["cpu_us_per_req"] is not None
            else None
        )
    return agg


def fmt(v, f):
    return "-" if v is None else format(v, f)


def table(agg, order, sizes):
    hdr = (
        f"{'proxy':10s} {'size':4s} {'req/s':>9s} {'p50':>9s} {'p99':>9s} "
        f"{'CPU us/req':>10s} {'x direct':>8s} {'x squid':>8s} {'CPU x squid':>11s} {'errors':>6s} "
        f"{'runq%':>5s}"
    )
    lines = [hdr, "-" * len(hdr)]
    for size in sizes:
        for name in order:
            r = agg.get((name, size))
            if r is None:
                continue
            lines.append(
                f"{name:10s} {size:4s} {r['rps']:9.0f} {fmt_us(r['p50_us']):>9s} "
                f"{fmt_us(r['p99_us']):>9s} {fmt(r['cpu_us_per_req'], '10.1f'):>10s} "
                f"{fmt(r['rps_vs_direct'], '8.2f'):>8s} {fmt(r['rps_vs_squid'], '8.2f'):>8s} "
                f"{fmt(r['cpu_vs_squid'], '11.2f'):>11s} {r['errors']:6d} "
                f"{fmt(r['proxy_runq_wait_pct'], '5.0f'):>5s}"
            )
    return "\n".join(lines)


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us:.0f}us" if us < 1000 else f"{us / 1000:.2f}ms"


def targets(agg, sizes):
    """The issue's targets for sluice, checked against squid in this run."""
    lines = []
    for size in sizes:
        r = agg.get(("sluice", size))
        if r is None:
            continue
        checks = [
            ("req/s >= 2x squid", r["rps_vs_squid"], lambda v: v >= 2.0),
            ("CPU/req <= 0.25x squid", r["cpu_vs_squid"], lambda v: v <= 0.25),
            ("p99 < 2 ms", r["p99_us"] / 1000.0 if r["p99_us"] else None, lambda v: v < 2.0),
            ("no errors", r["errors"], lambda v: v == 0),
        ]
        for label, v, ok in checks:
            verdict = "n/a" if v is None else ("PASS" if ok(v) else "FAIL")
            lines.append(f"sluice {size:4s} {label:24s} {fmt(v, '.2f'):>8s}  {verdict}")
    return "\n".join(lines)


def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    info["cpu"] = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    vers = {}
    for name, argv in {
        "nginx": ["nginx", "-v"],
        "squid": ["squid", "-v"],
        "tinyproxy": ["tinyproxy", "-v"],
        "wrk": ["wrk", "-v"],
    }.items():
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            vers[name] = (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            vers[name] = None
    info["versions"] = vers
    return info


# --------------------------------------------------------------------------


def find_sluice(arg):
    if arg == "none":
        return None
    if arg:
        p = os.path.abspath(arg)
        if not os.access(p, os.X_OK):
            raise SystemExit(f"bench: --sluice {arg}: not an executable")
        return p
    cand = os.path.join(REPO, "build", "sluice")
    return cand if os.access(cand, os.X_OK) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sluice", help="sluice binary (default: build/sluice if present; 'none' to skip)")
    ap.add_argument("--proxies", default=",".join(ALL_PROXIES),
                    help="comma list of direct,sluice,squid,tinyproxy (default: all)")
    ap.add_argument("--sizes", default="1k,10k", help="comma list of 1k,10k")
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per run (10)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds per run (2)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the whole set, order rotated; the table shows medians")
    ap.add_argument("--audit", choices=["file", "off"], default="file",
                    help="sluice audit log to a file in the temp dir (default) or off")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    ap.add_argument("--workdir", help="temp dir to use (run.sh passes one)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()

    lib.install_cleanup()
    lib.check_prereqs(["nginx", "squid", "tinyproxy", "wrk", "taskset"])
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench: needs 2 CPUs (proxy on CPU 0, wrk+nginx on CPU 1)")
    sizes = [s for s in a.sizes.split(",") if s]
    for s in sizes:
        if s not in lib.SIZES:
            raise SystemExit(f"bench: unknown size {s} (have {', '.join(lib.SIZES)})")
    proxies = [p for p in a.proxies.split(",") if p]
    for p in proxies:
        if p not in ALL_PROXIES:
            raise SystemExit(f"bench: unknown proxy {p} (have {', '.join(ALL_PROXIES)})")
    sluice_bin = None
    if "sluice" in proxies:
        sluice_bin = find_sluice(a.sluice)
        if sluice_bin is None:
            log("no sluice binary (build/sluice missing or --sluice none): skipping sluice")
            proxies.remove("sluice")
    if ("squid" in proxies or "tinyproxy" in proxies) and os.geteuid() != 0:
        log("note: not root; squid and tinyproxy may refuse to switch user")

    tmp = a.workdir or tempfile.mkdtemp(prefix="sluice-bench-")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o755)  # squid (proxy), tinyproxy and nginx workers (nobody) read it
    lib.set_pidfile(os.path.join(tmp, "pids"))
    log(f"workdir {tmp}")
    setup_www(tmp)

    starters = {
        "squid": lambda: start_squid(tmp, PROXY_CPU),
        "tinyproxy": lambda: start_tinyproxy(tmp, PROXY_CPU),
        "sluice": lambda: start_sluice(sluice_bin, tmp, PROXY_CPU, nginx_port, a.audit),
    }
    runs, failures, keepalive = [], {}, {}
    nginx, nginx_port = start_nginx(tmp, CLIENT_CPU)
    log(f"nginx on 127.0.0.1:{nginx_port} (CPU {CLIENT_CPU}); proxies on CPU {PROXY_CPU}")
    try:
        for rnd in range(a.rounds):
            k = rnd % len(proxies)
            order = proxies[k:] + proxies[:k]
            for name in order:
                if name in failures:
                    continue
                proc, port = None, nginx_port
                try:
                    if name != "direct":
                        proc, port = starters[name]()
                    ka = True
                    for size in sizes:
                        if name == "direct":
                            t, h = f"/{size}.bin", f"127.0.0.1:{nginx_port}"
                        else:
                            t = f"http://127.0.0.1:{nginx_port}/{size}.bin"
                            h = f"127.0.0.1:{nginx_port}"
                        ka = lib.preflight(port, t, h, lib.SIZES[size]) and ka
                    keepalive[name] = ka
                    for size in sizes:
                        r = measure(name, proc, port, nginx_port, size, a, tmp,
                                    keepalive[name])
                        r["round"] = rnd
                        r["client_keepalive"] = keepalive[name]
                        runs.append(r)
                except (BenchError, OSError) as e:
                    failures[name] = str(e)
                    log(f"{name}: FAILED: {e}")
                finally:
                    if proc is not None:
                        lib.stop(proc)
    finally:
        lib.stop_all()

    agg = aggregate(runs)
    order = [p for p in ALL_PROXIES if p in proxies]
    print()
    print(
        f"sluice proxy bench: {a.connections} connections, {a.threads} wrk thread(s), "
        f"{a.duration}s (+{a.warmup}s warm-up), {a.rounds} round(s); "
        f"proxy on CPU {PROXY_CPU}, wrk+nginx on CPU {CLIENT_CPU}"
    )
    print(table(agg, order, sizes))
    for name, ka in keepalive.items():
        if name != "direct" and not ka:
            print(f"note: {name} closes the client connection after every response (no client "
                  f"keep-alive): wrk reconnects per request; its read errors (one per "
                  f"reconnect) are not counted as errors")
    noisy = [r for r in runs if (r.get("other_load_cpu0_pct") or 0) > 10]
    if noisy:
        print(f"warning: in {len(noisy)} of {len(runs)} runs something else used more than 10% "
              f"of CPU {PROXY_CPU} (shared machine?): compare ratios, use --rounds")
    print("runq% = share of the run the proxy was runnable but waiting for its CPU "
          "(contention from other tasks; high means starved, not slow)")
    t = targets(agg, sizes)
    if t:
        print()
        print(t)
    for name, err in failures.items():
        print(f"FAILED {name}: {err.splitlines()[0]}")

    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outp = os.path.join(a.out, f"proxy-{stamp}.json")
    doc = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": vars(a),
        "sluice": sluice_bin,
        "results": sorted(agg.values(), key=lambda r: (r["size"], order.index(r["proxy"]))),
        "runs": runs,
        "failures": failures,
        "client_keepalive": keepalive,
    }
    with open(outp, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nJSON: {outp}")
    if not a.keep and not a.workdir:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
