"""Shared pieces of the sluice benches (bench/proxy and bench/idle).

Process management (every process started here is tracked and killed on
exit, including on failure and on SIGINT/SIGTERM), ephemeral ports, config
rendering, per-process CPU time and RSS from /proc, and a tiny HTTP client
used for pre-flight checks through a proxy. Loopback only.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

INSTALL_HINT = "apt-get install -y nginx-light squid tinyproxy wrk"

# The bench's body sizes: name -> bytes. Files are served by nginx.
SIZES = {"1k": 1024, "10k": 10 * 1024}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure the bench reports and survives (e.g. one proxy broken)."""


# --------------------------------------------------------------------------
# process registry and cleanup

_procs = []  # list of (name, Popen)
_pidfile = None  # run.sh's trap reads this to kill leftovers


def set_pidfile(path):
    global _pidfile
    _pidfile = path


def _preexec_child(rlimit_nofile):
    def fn():
        # Die with the bench if it is SIGKILLed (PR_SET_PDEATHSIG = 1).
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)
        except OSError:
            pass
        if rlimit_nofile:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = hard if hard != resource.RLIM_INFINITY else rlimit_nofile
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, rlimit_nofile), hard))

    return fn


def start(name, argv, cpu=None, log_path=None, rlimit_nofile=None, env=None):
    """Start argv in its own session (so its whole process group can be killed),
    optionally pinned to `cpu` with taskset. Output goes to log_path."""
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + list(argv)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    p = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_preexec_child(rlimit_nofile),
        env=env,
    )
    if log_path:
        out.close()
    _procs.append((name, p))
    if _pidfile:
        with open(_pidfile, "a") as f:
            f.write(f"{p.pid}\n")
    return p


def stop(p, timeout=5.0):
    """SIGTERM the process group of p, then SIGKILL whatever is left."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # Kill stragglers in the group even if the leader already exited
    # (squid/tinyproxy children, nginx workers).
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    for i, (_, q) in enumerate(_procs):
        if q is p:
            del _procs[i]
            break


def stop_all():
    for _, p in list(reversed(_procs)):
        stop(p)


def _on_signal(signum, frame):
    stop_all()
    sys.exit(128 + signum)


def install_cleanup():
    import atexit

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


# --------------------------------------------------------------------------
# prerequisites, ports, config files


def check_prereqs(names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise SystemExit(
            f"bench: missing {' '.join(missing)}; install with: {INSTALL_HINT}"
        )


def free_port():
    """An ephemeral loopback port that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def render(template, dest, **subst):
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    for k, v in subst.items():
        text = text.replace(f"@{k}@", str(v))
    if "@" in "".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")):
        # A placeholder left unrendered would make a silently wrong config.
        for ln in text.splitlines():
            if "@" in ln and not ln.lstrip().startswith("#"):
                raise BenchError(f"{template}: unrendered placeholder in {ln!r}")
    with open(dest, "w") as f:
        f.write(text)
    return dest


def wait_port(port, proc, name, timeout=10.0, log_path=None):
    """Wait until something accepts on 127.0.0.1:port; fail if proc died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}{tail(log_path)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} did not listen on 127.0.0.1:{port} in {timeout}s{tail(log_path)}")


def tail(path, n=15):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()[-n:]
    return "\n--- " + path + " ---\n" + "\n".join(lines)


# --------------------------------------------------------------------------
# /proc accounting


def group_pids(pgid):
    """All live pids whose process group is pgid (the session we started)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state); pgrp is field 5 -> index 2
        if int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


def cpu_seconds(pid):
    """utime+stime (+cutime+cstime of reaped children) of one process, all
    threads included, in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return 0.0
    fields = st[st.rindex(")") + 2 :].split()
    # /proc/PID/stat fields 14..17 -> indexes 11..14 after the comm field.
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def group_cpu_seconds(pgid, exclude=()):
    """CPU seconds of every process in the group (taskset has exec'd into the
    real program, so the leader is the program itself)."""
    return sum(cpu_seconds(p) for p in group_pids(pgid) if p not in exclude)


def cpu_ticks(cpu):
    """(busy, total) jiffies of one CPU from /proc/stat; busy counts user,
    nice, system, irq, softirq and steal (not idle or iowait)."""
    with open("/proc/stat") as f:
        for ln in f:
            if ln.startswith(f"cpu{cpu} "):
                v = [int(x) for x in ln.split()[1:9]]
                busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
                return busy, sum(v)
    raise BenchError(f"no cpu{cpu} in /proc/stat")


def group_schedstat_seconds(pgid):
    """(on-CPU, runqueue-wait) seconds summed over the live threads of the
    group, from /proc/PID/task/TID/schedstat (ns-precise, unlike the tick-
    sampled utime/stime; but threads that exited are missing). Wait is time
    runnable while another task held the CPU: contention, not work."""
    run = wait = 0
    for pid in group_pids(pgid):
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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def group_rss_kib(pgid):
    return sum(rss_kib(p) for p in group_pids(pgid))


# --------------------------------------------------------------------------
# minimal HTTP/1.1 client for pre-flight checks


def read_response(sock, buf=b""):
    """Read one HTTP/1.1 response with Content-Length from a blocking socket.
    Returns (status, headers dict lowercased, body, leftover)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed before response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" not in headers:
        raise BenchError(f"response without Content-Length: {lines[0]}")
    n = int(headers["content-length"])
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed in response body")
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def preflight(proxy_port, target, host, want_len, tries=2):
    """GET target via 127.0.0.1:proxy_port `tries` times on one connection;
    check status 200 and the body length. Returns True when the proxy kept
    the client connection open (keep-alive), False when it closed it after
    the first response; raises BenchError when the first request fails."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
    try:
        req = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-bench\r\n\r\n"
        ).encode()
        left = b""
        for i in range(tries):
            try:
                sock.sendall(req)
                status, headers, body, left = read_response(sock, left)
            except (BenchError, ConnectionError) as e:
                if i == 0:
                    raise BenchError(f"pre-flight GET {target}: {e}")
                # Answered once, then closed without saying so: no client
                # keep-alive (tinyproxy 1.11 does this).
                return False
            if status != 200 or len(body) != want_len:
                raise BenchError(
                    f"pre-flight GET {target}: status {status}, {len(body)} bytes "
                    f"(want 200, {want_len})"
                )
            if headers.get("connection", "").lower() == "close":
                return False
        return True
    finally:
        sock.close()
