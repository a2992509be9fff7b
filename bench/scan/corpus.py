"""Corpora for bench/scan: the benign system sample (the same 2,000 files
tests/rules/check_injection_rules.py samples from /usr/share/doc and man)
and the generated credentials, written as plain files into a directory so
that every tool reads the same bytes (man pages decompressed, since neither
secretlint nor `sluice scan` reads gzip)."""

import gzip
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "rules"))
import check_injection_rules  # noqa: E402
import sluice_scan  # noqa: E402


def write_benign(dest, n, seed=7):
    """Copy the system sample of n files into dest (flat, numbered names).
    Binary files (a NUL in the first 4 KiB) are left out, as the checker does.
    Returns (paths, total bytes, {path: the system file it copies})."""
    os.makedirs(dest, exist_ok=True)
    out, total, origin = [], 0, {}
    for i, src in enumerate(check_injection_rules.system_sample(n, seed)):
        try:
            with open(src, "rb") as f:
                data = f.read()
            if src.endswith(".gz"):
                data = gzip.decompress(data)
        except (OSError, EOFError):
            continue
        if b"\0" in data[:4096]:
            continue
        name = os.path.basename(src)
        p = os.path.join(dest, "%04d-%s" % (i, name[:-3] if name.endswith(".gz") else name))
        with open(p, "wb") as f:
            f.write(data)
        out.append(p)
        origin[p] = src
        total += len(data)
    return out, total, origin


def write_credentials(dest, seed, n):
    """gen_credentials.py samples, one per file: [(rule_id, path)], total bytes."""
    samples = sluice_scan.write_sample_files(dest, seed, n)
    return samples, sum(os.path.getsize(p) for _, p in samples)


def timed(fn, *args, **kw):
    """(fn's result, wall seconds, CPU seconds of the child processes it waited for)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = fn(*args, **kw)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return res, wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
