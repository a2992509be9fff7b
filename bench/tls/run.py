#!/usr/bin/env python3
"""sluice TLS interception bench: HTTPS GETs through CONNECT tunnels that
sluice, squid (ssl_bump) and mitmproxy intercept, and directly against the
nginx origin, in one run, driven by bench/tls/tlsload. See bench/README.md
and docs/benchmarks.md. Normally started through bench/tls/run.sh."""

import argparse
import datetime
import json
import os
import platform
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench", "proxy"))

import lib  # noqa: E402  (bench/proxy/lib.py: processes, ports, /proc)
from lib import BenchError, log  # noqa: E402

ALL_PROXIES = ["direct", "sluice", "squid-bump", "mitmproxy"]
PROXY_CPU = 0  # the proxy under test
CLIENT_CPU = 1  # tlsload and nginx
HOST = "bench.test"  # the intercepted name; every proxy maps it to nginx
INSTALL_HINT = "apt-get install -y nginx-light squid mitmproxy"
SQUID_ROOT = os.path.join(REPO, "bench", "out", "squid-openssl")


# --------------------------------------------------------------------------
# the proxy's processes: its process group plus every descendant (squid
# starts its certgen helpers in process groups of their own)


def proc_tree(pgid):
    """Live pids in group pgid and all their descendants."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        parent[int(d)] = (int(fields[1]), int(fields[2]))  # ppid, pgrp
    pids = {p for p, (_, g) in parent.items() if g == pgid}
    grew = True
    while grew:
        kids = {p for p, (pp, _) in parent.items() if pp in pids and p not in pids}
        pids |= kids
        grew = bool(kids)
    return sorted(pids)


def tree_cpu_seconds(pgid):
    return sum(lib.cpu_seconds(p) for p in proc_tree(pgid))


def tree_schedstat_seconds(pgid):
    """(on-CPU, runqueue-wait) seconds over the live threads of the tree."""
    run = wait = 0
    for pid in proc_tree(pgid):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    v = f.read().split()
                run += int(v[0])
                wait += int(v[1])
            except (OSError, IndexError, ValueError):
                continue
    return run / 1e9, wait / 1e9


def tree_rss_kib(pgid):
    total = 0
    for p in proc_tree(pgid):
        try:
            total += lib.rss_kib(p)
        except (OSError, BenchError):
            continue  # exited meanwhile
    return total


def record_foreign_groups(proc, pidfile):
    """Add the process groups of the proxy's descendants that left its group
    to run.sh's kill list (its EXIT trap kills every group listed there)."""
    groups = set()
    for pid in proc_tree(proc.pid):
        try:
            g = os.getpgid(pid)
        except ProcessLookupError:
            continue
        if g != proc.pid:
            groups.add(g)
    if groups:
        with open(pidfile, "a") as f:
            f.writelines(f"{g}\n" for g in sorted(groups))
    return groups


def stop_tree(proc):
    """Stop the proxy's group, then whatever descendants outlived it."""
    pids = [p for p in proc_tree(proc.pid) if p != proc.pid]
    lib.stop(proc)
    for p in pids:
        try:
            os.kill(p, 9)
        except ProcessLookupError:
            pass


def tmpl(name):
    return os.path.join(HERE, name)


# --------------------------------------------------------------------------
# certificates (openssl CLI)


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"openssl {args[0]}: {r.stderr.strip()[-400:]}")


def make_ca(d, name, cn):
    """An ECDSA P-256 CA: returns (cert, key)."""
    cert, key = os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-subj", f"/CN={cn}", "-days", "2",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_certs(tmp):
    """Upstream CA + nginx's bench.test certificate, and squid's
    interception CA. Returns a dict of paths."""
    d = os.path.join(tmp, "certs")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    up_ca, up_key = make_ca(d, "upstream-ca", "sluice bench upstream CA")
    leaf, leaf_key, csr = (os.path.join(d, n) for n in ("origin.pem", "origin.key", "origin.csr"))
    ext = os.path.join(d, "origin.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", leaf_key, "-out", csr, "-subj", f"/CN={HOST}")
    openssl("x509", "-req", "-in", csr, "-CA", up_ca, "-CAkey", up_key, "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", leaf)
    sq_ca, sq_key = make_ca(d, "squid-ca", "squid bench interception CA")
    for p in (up_ca, leaf, sq_ca):
        os.chmod(p, 0o644)
    return {"upstream_ca": up_ca, "origin_cert": leaf, "origin_key": leaf_key,
            "squid_ca": sq_ca, "squid_key": sq_key}


# --------------------------------------------------------------------------
# the origin and the proxies: each start_* returns (Popen, port, client CA)


def setup_www(tmp):
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    for name, n in lib.SIZES.items():
        with open(os.path.join(www, f"{name}.bin"), "wb") as f:
            f.write(os.urandom(n))
        os.chmod(os.path.join(www, f"{name}.bin"), 0o644)
    os.chmod(www, 0o755)


def start_nginx(tmp, certs):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    port = lib.free_port()
    conf = lib.render(tmpl("nginx.conf.in"), os.path.join(d, "nginx.conf"), TMP=tmp, PORT=port,
                      CERT=certs["origin_cert"], KEY=certs["origin_key"])
    p = lib.start("nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                  cpu=CLIENT_CPU, log_path=os.path.join(d, "stdout.log"), rlimit_nofile=65536)
    lib.wait_port(port, p, "nginx", log_path=os.path.join(d, "error.log"))
    return p, port


def wait_file(path, proc, name, log_path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}{lib.tail(log_path)}")
        time.sleep(0.05)
    raise BenchError(f"{name} did not write {path} in {timeout}s{lib.tail(log_path)}")


INSPECT_EXTRA = {
    "default": "",
    "no-responses": "inspect:\n  responses: false\n",
    "off": "inspect:\n  enabled: false\n",
}


def start_sluice(binary, tmp, nginx_port, certs, audit, inspect="default"):
    d = os.path.join(tmp, "sluice")
    os.makedirs(d, exist_ok=True)
    port = lib.free_port()
    ca_out = os.path.join(d, "sluice-ca.pem")
    if os.path.exists(ca_out):
        os.unlink(ca_out)  # a fresh CA per start
    conf = lib.render(tmpl("sluice.yaml.in"), os.path.join(d, "sluice.yaml"), PORT=port,
                      UPSTREAM=f"127.0.0.1:{nginx_port}", UPSTREAM_CA=certs["upstream_ca"],
                      AUDIT=os.path.join(d, "audit.jsonl") if audit == "file" else "off",
                      CA_OUT=ca_out)
    if INSPECT_EXTRA[inspect]:
        with open(conf, "a") as f:
            f.write(INSPECT_EXTRA[inspect])
    logp = os.path.join(d, "sluice.log")
    p = lib.start("sluice", [binary, "run", "-c", conf], cpu=PROXY_CPU, log_path=logp,
                  rlimit_nofile=20000)
    # The first start with a rule set compiles it (tens of seconds; cached after).
    lib.wait_port(port, p, "sluice", timeout=180, log_path=logp)
    wait_file(ca_out, p, "sluice", logp)
    return p, port, ca_out


def _own_dir(path, user):
    os.makedirs(path, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o755)


def _as_user(user):
    """preexec_fn dropping to `user` (squid's certgen db must be its own)."""
    pw = pwd.getpwnam(user)

    def fn():
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return fn if os.geteuid() == 0 else None


def start_squid(squid, tmp, certs):
    d = os.path.join(tmp, "squid")
    _own_dir(d, "proxy")
    if os.geteuid() == 0:
        os.chown(certs["squid_key"], pwd.getpwnam("proxy").pw_uid, -1)
    os.chmod(certs["squid_key"], 0o600)
    db = os.path.join(d, "ssl_db")
    shutil.rmtree(db, ignore_errors=True)
    r = subprocess.run([squid["certgen"], "-c", "-s", db, "-M", "16MB"], capture_output=True,
                       text=True, preexec_fn=_as_user("proxy"))
    if r.returncode != 0:
        raise BenchError(f"security_file_certgen -c: {r.stderr.strip()}")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write(f"127.0.0.1 {HOST}\n")
    os.chmod(hosts, 0o644)
    port = lib.free_port()
    conf = lib.render(tmpl("squid-bump.conf.in"), os.path.join(d, "squid.conf"), TMP=tmp,
                      PORT=port, CA_CERT=certs["squid_ca"], CA_KEY=certs["squid_key"],
                      CERTGEN=squid["certgen"], UPSTREAM_CA=certs["upstream_ca"], HOSTS=hosts)
    p = lib.start("squid", [squid["squid"], "-N", "-f", conf], cpu=PROXY_CPU,
                  log_path=os.path.join(d, "stdout.log"), rlimit_nofile=20000)
    lib.wait_port(port, p, "squid", timeout=20, log_path=os.path.join(d, "cache.log"))
    return p, port, certs["squid_ca"]


def start_mitmproxy(tmp, certs):
    d = os.path.join(tmp, "mitmproxy")
    os.makedirs(d, exist_ok=True)
    port = lib.free_port()
    logp = os.path.join(d, "stdout.log")
    argv = ["mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
            "--set", f"confdir={d}", "--set", f"ssl_verify_upstream_trusted_ca={certs['upstream_ca']}",
            "-s", tmpl("mitm_hosts.py")]
    p = lib.start("mitmproxy", argv, cpu=PROXY_CPU, log_path=logp, rlimit_nofile=20000)
    lib.wait_port(port, p, "mitmproxy", timeout=30, log_path=logp)
    ca = os.path.join(d, "mitmproxy-ca-cert.pem")
    wait_file(ca, p, "mitmproxy", logp)
    return p, port, ca


# --------------------------------------------------------------------------
# tlsload


def tlsload_argv(tlsload, name, port, nginx_port, ca, size):
    authority = f"{HOST}:{nginx_port}"
    argv = [tlsload, "--sni", HOST, "--host", authority, "--cafile", ca,
            "--path", f"/{size}.bin", "--expect-len", str(lib.SIZES[size])]
    if name == "direct":
        argv += ["--direct", f"127.0.0.1:{nginx_port}"]
    else:
        argv += ["--proxy", f"127.0.0.1:{port}", "--connect", authority]
    return argv


def run_tlsload(tmp, argv, tag, timeout):
    logp = os.path.join(tmp, f"tlsload-{tag}.log")
    if os.path.exists(logp):
        os.unlink(logp)
    p = lib.start("tlsload", argv, cpu=CLIENT_CPU, log_path=logp)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"tlsload {tag} did not finish")
    finally:
        lib.stop(p)
    with open(logp) as f:
        out = f.read()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise BenchError(f"tlsload {tag} exited {p.returncode}: {out.strip()[-600:]}")
    return json.loads(lines[-1])


def preflight(tmp, base_argv, tag):
    """Two requests on one connection, both must be 200 with the exact body."""
    run_tlsload(tmp, base_argv + ["-c", "1", "-n", "2", "-d", "10", "--check"],
                f"{tag}-preflight", 30)


def measure(name, proc, base_argv, size, mode, a, tmp):
    """Warm up, then a measured run with the proxy's CPU time around it."""
    tag = f"{name}-{mode}-{size}"
    argv = base_argv + ["-c", str(a.connections)] + (["--new-conn"] if mode == "new-conn" else [])
    if a.warmup > 0:
        run_tlsload(tmp, argv + ["-d", str(a.warmup)], f"{tag}-warm", a.warmup + 30)
    pg = proc.pid if proc else None
    cpu0 = tree_cpu_seconds(pg) if proc else 0.0
    pin0 = lib.cpu_ticks(PROXY_CPU)
    cli0 = lib.cpu_ticks(CLIENT_CPU)
    run0, wait0 = tree_schedstat_seconds(pg) if proc else (0.0, 0.0)
    res = run_tlsload(tmp, argv + ["-d", str(a.duration)], tag, a.duration + 30)
    cpu1 = tree_cpu_seconds(pg) if proc else 0.0
    pin1 = lib.cpu_ticks(PROXY_CPU)
    cli1 = lib.cpu_ticks(CLIENT_CPU)
    run1, wait1 = tree_schedstat_seconds(pg) if proc else (0.0, 0.0)
    if proc is not None and proc.poll() is not None:
        raise BenchError(f"{name} died during the {tag} run (exit {proc.returncode})")
    res.update(proxy=name, size=size, mode=mode)
    n = res["requests"]
    res["cpu_s"] = cpu1 - cpu0 if proc else None
    res["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / n if proc and n else None
    res["sched_us_per_req"] = round((run1 - run0) * 1e6 / n, 1) if proc and n else None
    res["rss_kib"] = tree_rss_kib(pg) if proc else None
    res["processes"] = len(proc_tree(pg)) if proc else None
    if proc:
        record_foreign_groups(proc, os.path.join(tmp, "pids"))
    busy, total = pin1[0] - pin0[0], pin1[1] - pin0[1]
    own = (cpu1 - cpu0) * lib.CLK_TCK
    res["other_load_cpu0_pct"] = round(max(0.0, busy - own) * 100.0 / total, 1) if total else None
    res["loadavg_1m"] = os.getloadavg()[0]
    # Is the proxy the bottleneck? Its CPU use as a share of its core, how
    # busy the client's core was (tlsload + nginx: near 100 means the load
    # generator limited the rate), and the rate the proxy's measured CPU
    # cost would allow on a whole core of its own.
    res["proxy_cpu_pct"] = (round((cpu1 - cpu0) * 100.0 / res["duration_s"], 1)
                            if proc and res["duration_s"] else None)
    ctot = cli1[1] - cli0[1]
    res["client_cpu1_busy_pct"] = round((cli1[0] - cli0[0]) * 100.0 / ctot, 1) if ctot else None
    res["client_us_per_req"] = round(res["client_cpu_s"] * 1e6 / n, 1) if n else None
    res["capacity_rps"] = round(1e6 / res["cpu_us_per_req"]) if res["cpu_us_per_req"] else None
    res["proxy_runq_wait_pct"] = (round((wait1 - wait0) * 100.0 / res["duration_s"], 1)
                                  if proc and res["duration_s"] else None)
    log(f"{name:10s} {mode:10s} {size:4s} {res['rps']:9.0f} req/s  p50 {fmt_us(res['p50_us'])}  "
        f"p99 {fmt_us(res['p99_us'])}  cpu/req {fmt(res['cpu_us_per_req'], '.1f')}us  "
        f"proxy cpu {fmt(res['proxy_cpu_pct'], '.0f')}%  cpu1 {fmt(res['client_cpu1_busy_pct'], '.0f')}%  "
        f"runq wait {fmt(res['proxy_runq_wait_pct'], '.0f')}%  loadavg {res['loadavg_1m']:.1f}"
        + (f"  ERRORS {res['errors']}" if res["error_count"] else ""))
    return res


def perf_profile(proc, base_argv, size, mode, a, tmp, out_txt):
    """An extra, unmeasured run with `perf record -g` attached to the proxy;
    writes the top of `perf report` to out_txt."""
    if shutil.which("perf") is None:
        log("perf not found (apt-get install -y linux-perf): no profile")
        return None
    data = os.path.join(tmp, f"perf-{mode}.data")
    argv = base_argv + ["-c", str(a.connections), "-d", str(a.duration)]
    if mode == "new-conn":
        argv.append("--new-conn")
    rec = lib.start("perf", ["perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                             "-p", str(proc.pid), "-o", data],
                    log_path=os.path.join(tmp, f"perf-{mode}.log"))
    # System calls and context switches per request, counted alongside.
    stat_out = os.path.join(tmp, f"perf-stat-{mode}.csv")
    stat = lib.start("perf-stat", ["perf", "stat", "-x", ",", "-o", stat_out, "-e",
                                   "raw_syscalls:sys_enter,context-switches", "-p", str(proc.pid)],
                     log_path=os.path.join(tmp, f"perf-stat-{mode}.log"))
    time.sleep(0.5)
    try:
        res = run_tlsload(tmp, argv, f"perf-{mode}-{size}", a.duration + 30)
    finally:
        # perf writes its data on SIGINT.
        for p in (rec, stat):
            try:
                os.kill(p.pid, 2)
                p.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            lib.stop(p)
    counts = {}
    try:
        with open(stat_out) as f:
            for ln in f:
                v = ln.split(",")
                if len(v) > 2 and v[0].strip().isdigit():
                    counts[v[2]] = int(v[0])
    except OSError:
        pass
    with open(out_txt, "a") as f:
        f.write(f"# perf record -F 499 --call-graph dwarf -p SLUICE during tlsload {mode} {size}, "
                f"{a.connections} connections, {a.duration}s: {res['rps']:.0f} req/s\n")
        if res["requests"]:
            # Counted over the run plus ~0.5 s idle on each side: an upper bound.
            f.write("# per request: " + ", ".join(
                f"{k} {v / res['requests']:.1f}" for k, v in counts.items()) + "\n")
        # Self time by function, then inclusive time of sluice's own
        # functions (where in sluice the time goes, callees included).
        for title, args, keep in (
                ("self, by object", ["--no-children", "--sort", "dso"], None),
                ("self", ["--no-children", "--percent-limit", "0.7"], None),
                ("inclusive, sluice functions", ["--children", "--percent-limit", "1"],
                 " sluice ")):
            sort = [] if "--sort" in args else ["--sort", "dso,symbol"]
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                                *sort, *args], capture_output=True, text=True)
            f.write(f"## {title}\n")
            f.write("\n".join(ln.rstrip(" -") for ln in r.stdout.splitlines()
                              if ln and not ln.startswith("#") and (keep is None or keep in ln)))
            f.write("\n\n")
    return out_txt


# --------------------------------------------------------------------------
# report


def fmt(v, f):
    return "-" if v is None else format(v, f)


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us:.0f}us" if us < 1000 else f"{us / 1000:.2f}ms"


def aggregate(runs):
    """Median over rounds for each (proxy, mode, size), ratios within the run."""
    groups = {}
    for r in runs:
        groups.setdefault((r["proxy"], r["mode"], r["size"]), []).append(r)
    agg = {}
    for key, rs in groups.items():
        def med(k):
            vals = [x[k] for x in rs if x.get(k) is not None]
            return statistics.median(vals) if vals else None

        agg[key] = {"proxy": key[0], "mode": key[1], "size": key[2], "rounds": len(rs),
                    "rps": med("rps"), "p50_us": med("p50_us"), "p99_us": med("p99_us"),
                    "cpu_us_per_req": med("cpu_us_per_req"),
                    "capacity_rps": med("capacity_rps"),
                    "proxy_cpu_pct": med("proxy_cpu_pct"),
                    "client_cpu1_busy_pct": med("client_cpu1_busy_pct"),
                    "proxy_runq_wait_pct": med("proxy_runq_wait_pct"),
                    "other_load_cpu0_pct": med("other_load_cpu0_pct"),
                    "errors": sum(x["error_count"] for x in rs),
                    "requests": sum(x["requests"] for x in rs)}
    for (proxy, mode, size), r in agg.items():
        def ratio(other, k):
            o = agg.get((other, mode, size))
            return r[k] / o[k] if o and o.get(k) and r.get(k) is not None else None

        r["rps_vs_direct"] = ratio("direct", "rps")
        r["rps_vs_squid"] = ratio("squid-bump", "rps")
        r["rps_vs_mitmproxy"] = ratio("mitmproxy", "rps")
        r["cpu_vs_squid"] = ratio("squid-bump", "cpu_us_per_req")
        r["capacity_vs_squid"] = ratio("squid-bump", "capacity_rps")
        r["capacity_vs_mitmproxy"] = ratio("mitmproxy", "capacity_rps")
    return agg


def table(agg, order, cases):
    hdr = (f"{'proxy':10s} {'mode':10s} {'size':4s} {'req/s':>8s} {'p50':>8s} {'p99':>8s} "
           f"{'CPU us/req':>10s} {'x direct':>8s} {'x squid':>7s} {'x mitm':>7s} "
           f"{'CPU x squid':>11s} {'errors':>6s} {'cap/s':>6s} {'prx%':>4s} {'cpu1%':>5s} "
           f"{'runq%':>5s}")
    lines = [hdr, "-" * len(hdr)]
    for mode, size in cases:
        for name in order:
            r = agg.get((name, mode, size))
            if r is None:
                continue
            lines.append(
                f"{name:10s} {mode:10s} {size:4s} {r['rps']:8.0f} {fmt_us(r['p50_us']):>8s} "
                f"{fmt_us(r['p99_us']):>8s} {fmt(r['cpu_us_per_req'], '10.1f'):>10s} "
                f"{fmt(r['rps_vs_direct'], '8.2f'):>8s} {fmt(r['rps_vs_squid'], '7.2f'):>7s} "
                f"{fmt(r['rps_vs_mitmproxy'], '7.1f'):>7s} {fmt(r['cpu_vs_squid'], '11.2f'):>11s} "
                f"{r['errors']:6d} {fmt(r['capacity_rps'], '6.0f'):>6s} "
                f"{fmt(r['proxy_cpu_pct'], '4.0f'):>4s} {fmt(r['client_cpu1_busy_pct'], '5.0f'):>5s} "
                f"{fmt(r['proxy_runq_wait_pct'], '5.0f'):>5s}")
    return "\n".join(lines)


def targets(agg, sizes):
    """Issue 5's targets for sluice, against squid and mitmproxy in this run."""
    checks = []
    for size in sizes:
        r = agg.get(("sluice", "keep-alive", size))
        if r is None:
            continue
        checks += [
            (f"keep-alive {size} req/s >= 2x squid", r["rps_vs_squid"], lambda v: v >= 2.0),
            (f"keep-alive {size} CPU/req <= 1/3 squid", r["cpu_vs_squid"], lambda v: v <= 1 / 3),
            (f"keep-alive {size} req/s >= 20x mitmproxy", r["rps_vs_mitmproxy"],
             lambda v: v >= 20.0),
        ]
    r = agg.get(("sluice", "new-conn", "1k"))
    if r is not None:
        checks.append(("new-conn 1k conn/s >= 2x squid", r["rps_vs_squid"], lambda v: v >= 2.0))
    info = []
    for mode, size in [("keep-alive", s) for s in sizes] + [("new-conn", "1k")]:
        r = agg.get(("sluice", mode, size))
        if r is not None and r.get("capacity_vs_squid") is not None:
            info.append(f"(by CPU cost, 1/CPU-per-request) sluice {mode} {size}: "
                        f"{r['capacity_vs_squid']:.2f}x squid"
                        + (f", {r['capacity_vs_mitmproxy']:.1f}x mitmproxy"
                           if r.get("capacity_vs_mitmproxy") else ""))
    errs = sum(r["errors"] for k, r in agg.items() if k[0] == "sluice")
    if any(k[0] == "sluice" for k in agg):
        checks.append(("no errors", errs, lambda v: v == 0))
    lines = []
    for label, v, ok in checks:
        verdict = "n/a" if v is None else ("PASS" if ok(v) else "FAIL")
        lines.append(f"sluice {label:40s} {fmt(v, '.2f'):>8s}  {verdict}")
    return "\n".join(lines + info)


def machine_info(squid):
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
    for name, argv in {"nginx": ["nginx", "-v"],
                       "squid": [squid["squid"], "-v"] if squid else None,
                       "mitmproxy": ["mitmdump", "--version"],
                       "openssl": ["openssl", "version"]}.items():
        if argv is None:
            continue
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            vers[name] = (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            vers[name] = None
    info["versions"] = vers
    return info


# --------------------------------------------------------------------------


def find_exe(arg, default, what):
    if arg == "none":
        return None
    p = os.path.abspath(arg) if arg else default
    if p and os.access(p, os.X_OK):
        return p
    if arg:
        raise SystemExit(f"bench: {what} {arg}: not an executable")
    return None


def squid_can_bump(binary):
    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return False
    return "--with-openssl" in out and "--enable-ssl-crtd" in out


def find_squid(arg):
    """squid built with OpenSSL (ssl_bump) and its certgen helper: --squid,
    else an installed squid-openssl, else the scratch root (unpacked on
    demand by get-squid-openssl.sh, since squid-openssl conflicts with the
    GnuTLS squid that bench/proxy uses)."""
    cands = [os.path.abspath(arg)] if arg else ["/usr/sbin/squid",
                                                 os.path.join(SQUID_ROOT, "usr/sbin/squid")]
    for s in cands:
        if os.access(s, os.X_OK) and squid_can_bump(s):
            root = os.path.dirname(os.path.dirname(os.path.dirname(s)))
            certgen = os.path.join(root, "usr/lib/squid/security_file_certgen")
            if os.access(certgen, os.X_OK):
                return {"squid": s, "certgen": certgen}
    if arg:
        raise SystemExit(f"bench: --squid {arg}: not a squid with ssl_bump and certgen")
    log(f"no squid with ssl_bump: unpacking Debian's squid-openssl into {SQUID_ROOT}")
    r = subprocess.run([os.path.join(HERE, "get-squid-openssl.sh"), SQUID_ROOT])
    s = os.path.join(SQUID_ROOT, "usr/sbin/squid")
    if r.returncode != 0 or not squid_can_bump(s):
        return None
    return {"squid": s, "certgen": os.path.join(SQUID_ROOT, "usr/lib/squid/security_file_certgen")}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sluice", help="sluice binary (default build/sluice; 'none' to skip)")
    ap.add_argument("--tlsload", help="tlsload binary (default build/tlsload)")
    ap.add_argument("--squid", help="squid built with OpenSSL (default: installed squid-openssl "
                    f"or {os.path.relpath(SQUID_ROOT, REPO)}, unpacked on demand)")
    ap.add_argument("--proxies", default=",".join(ALL_PROXIES),
                    help="comma list of direct,sluice,squid-bump,mitmproxy (default: all)")
    ap.add_argument("--sizes", default="1k,10k", help="keep-alive body sizes (1k,10k)")
    ap.add_argument("--new-conn", default="direct,sluice,squid-bump",
                    help="proxies measured with --new-conn 1k too ('' for none)")
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per run (10)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds per run (2)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the whole set, order rotated; the table shows medians")
    ap.add_argument("--audit", choices=["file", "off"], default="file",
                    help="sluice audit log to a file in the temp dir (default) or off")
    ap.add_argument("--inspect", choices=list(INSPECT_EXTRA), default="default",
                    help="sluice's traffic inspection: as configured by default (on, response "
                         "bodies scanned), 'no-responses' (inspect: {responses: false}) or "
                         "'off' (inspect: {enabled: false})")
    ap.add_argument("--perf", action="store_true",
                    help="after measuring sluice, profile it (perf record -g) in extra runs")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    ap.add_argument("--workdir", help="temp dir to use (run.sh passes one)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()

    lib.install_cleanup()
    proxies = [p for p in a.proxies.split(",") if p]
    for p in proxies:
        if p not in ALL_PROXIES:
            raise SystemExit(f"bench: unknown proxy {p} (have {', '.join(ALL_PROXIES)})")
    sizes = [s for s in a.sizes.split(",") if s]
    for s in sizes:
        if s not in lib.SIZES:
            raise SystemExit(f"bench: unknown size {s} (have {', '.join(lib.SIZES)})")
    new_conn = [p for p in a.new_conn.split(",") if p and p in proxies]
    need = ["nginx", "openssl", "taskset"] + (["mitmdump"] if "mitmproxy" in proxies else [])
    missing = [n for n in need if shutil.which(n) is None]
    if missing:
        raise SystemExit(f"bench: missing {' '.join(missing)}; install with: {INSTALL_HINT}")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench: needs 2 CPUs (proxy on CPU 0, tlsload+nginx on CPU 1)")
    tlsload = find_exe(a.tlsload, os.path.join(REPO, "build", "tlsload"), "--tlsload")
    if tlsload is None:
        raise SystemExit("bench: no tlsload: build it (cmake -S . -B build -G Ninja && "
                         "ninja -C build tlsload) or pass --tlsload")
    sluice_bin = None
    if "sluice" in proxies:
        sluice_bin = find_exe(a.sluice, os.path.join(REPO, "build", "sluice"), "--sluice")
        if sluice_bin is None:
            log("no sluice binary (build/sluice missing or --sluice none): skipping sluice")
            proxies.remove("sluice")
    squid = None
    if "squid-bump" in proxies:
        squid = find_squid(a.squid)
        if squid is None:
            log("no squid with ssl_bump (see bench/tls/get-squid-openssl.sh): skipping squid-bump")
            proxies.remove("squid-bump")
        elif os.geteuid() != 0:
            log("note: not root; squid may refuse to switch to user proxy")

    tmp = a.workdir or tempfile.mkdtemp(prefix="sluice-tlsbench-")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o755)  # squid (proxy) and nginx workers read it
    lib.set_pidfile(os.path.join(tmp, "pids"))
    log(f"workdir {tmp}")
    setup_www(tmp)
    certs = make_certs(tmp)
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    perf_txt = os.path.join(a.out, f"tls-{stamp}-perf.txt") if a.perf else None

    runs, failures = [], {}
    nginx, nginx_port = start_nginx(tmp, certs)
    log(f"nginx (TLS) on 127.0.0.1:{nginx_port} (CPU {CLIENT_CPU}); proxies on CPU {PROXY_CPU}")
    starters = {
        "sluice": lambda: start_sluice(sluice_bin, tmp, nginx_port, certs, a.audit, a.inspect),
        "squid-bump": lambda: start_squid(squid, tmp, certs),
        "mitmproxy": lambda: start_mitmproxy(tmp, certs),
    }
    try:
        for rnd in range(a.rounds):
            k = rnd % len(proxies)
            for name in proxies[k:] + proxies[:k]:
                if name in failures:
                    continue
                proc, port, ca = None, nginx_port, certs["upstream_ca"]
                try:
                    if name != "direct":
                        proc, port, ca = starters[name]()
                        record_foreign_groups(proc, os.path.join(tmp, "pids"))
                    cases = [("keep-alive", s) for s in sizes]
                    if name in new_conn:
                        cases.append(("new-conn", "1k"))
                    for size in sorted({s for _, s in cases}):
                        preflight(tmp, tlsload_argv(tlsload, name, port, nginx_port, ca, size),
                                  f"{name}-{size}")
                    for mode, size in cases:
                        base = tlsload_argv(tlsload, name, port, nginx_port, ca, size)
                        r = measure(name, proc, base, size, mode, a, tmp)
                        r["round"] = rnd
                        runs.append(r)
                    if name == "sluice" and a.perf and rnd == 0:
                        for mode in ["keep-alive"] + (["new-conn"] if name in new_conn else []):
                            base = tlsload_argv(tlsload, name, port, nginx_port, ca, "1k")
                            perf_profile(proc, base, "1k", mode, a, tmp, perf_txt)
                except (BenchError, OSError) as e:
                    failures[name] = str(e)
                    log(f"{name}: FAILED: {e}")
                finally:
                    if proc is not None:
                        stop_tree(proc)
    finally:
        lib.stop_all()

    agg = aggregate(runs)
    cases = [("keep-alive", s) for s in sizes] + ([("new-conn", "1k")] if new_conn else [])
    print()
    print(f"sluice TLS interception bench: {a.connections} connections, {a.duration}s "
          f"(+{a.warmup}s warm-up), {a.rounds} round(s); proxy on CPU {PROXY_CPU}, "
          f"tlsload+nginx on CPU {CLIENT_CPU}; sluice inspection: {a.inspect}, "
          f"audit: {a.audit}")
    print(table(agg, [p for p in ALL_PROXIES if p in proxies], cases))
    print("new-conn: one request per connection (TCP + CONNECT + full TLS handshake + GET), "
          "so req/s is the new-connection rate")
    print("cap/s = 1e6 / CPU us per request: the rate the proxy's measured CPU cost allows on "
          "a core of its own; prx% = the proxy's CPU use (% of one core); cpu1% = how busy "
          "CPU 1 (tlsload + nginx) was: near 100 means the client side limited the rate")
    print("runq% = share of the run the proxy was runnable but waiting for its CPU "
          "(contention from other tasks; high means starved, not slow)")
    noisy = [r for r in runs if (r.get("other_load_cpu0_pct") or 0) > 10]
    if noisy:
        print(f"warning: in {len(noisy)} of {len(runs)} runs something else used more than 10% "
              f"of CPU {PROXY_CPU} (shared machine?): compare ratios, use --rounds")
    t = targets(agg, sizes)
    if t:
        print()
        print(t)
    for name, err in failures.items():
        print(f"FAILED {name}: {err.splitlines()[0]}")

    outp = os.path.join(a.out, f"tls-{stamp}.json")
    doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "machine": machine_info(squid), "args": vars(a), "sluice": sluice_bin,
           "squid": squid, "results": sorted(agg.values(), key=lambda r: (
               r["mode"], r["size"], ALL_PROXIES.index(r["proxy"]))),
           "runs": runs, "failures": failures}
    with open(outp, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nJSON: {outp}")
    if perf_txt and os.path.exists(perf_txt):
        print(f"perf profile of sluice: {perf_txt}")
    if not a.keep and not a.workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
