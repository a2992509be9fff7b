"""Run the C engine (`sluice scan`) over many files and collect its findings;
write gen_credentials.py samples one per file. Shared by test_engine_recall.py
and bench/scan/run.py. Values are never printed: only rule ids and paths.
"""

import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import gen_credentials  # noqa: E402

# Paths per `sluice scan` call: keeps argv far below ARG_MAX.
CHUNK = 5000


def find_sluice():
    """$SLUICE_BIN, else build/sluice in the repo; None if neither exists."""
    for p in (os.environ.get("SLUICE_BIN"), os.path.join(REPO, "build", "sluice")):
        if p and os.access(p, os.X_OK):
            return p
    return None


def write_sample_files(outdir, seed, n):
    """Generate n samples per credential/financial format with a fixed seed (the
    same draws as `gen_credentials.py OUT -n N --seed S`) and write each to its
    own file outdir/<rule-id>/<k>.txt. Returns [(rule_id, path), ...]."""
    rng = random.Random(seed)
    out = []
    for rid in sorted(gen_credentials.FORMATS):
        d = os.path.join(outdir, rid)
        os.makedirs(d, exist_ok=True)
        for k, s in enumerate(gen_credentials.samples(rid, n, rng)):
            p = os.path.join(d, "%d.txt" % k)
            with open(p, "w", encoding="utf-8") as f:
                f.write(s + "\n")
            out.append((rid, p))
    return out


def scan_files(sluice, paths, surface="all", args=()):
    """{path: [finding, ...]} from `sluice scan --surface S ARGS PATH...` (JSON
    output: one object per input). Raises RuntimeError on exit status 2."""
    res = {}
    for i in range(0, len(paths), CHUNK):
        part = list(paths[i:i + CHUNK])
        p = subprocess.run([sluice, "scan", "--surface", surface, *args, *part],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode not in (0, 1):
            raise RuntimeError("sluice scan exit %d: %s" % (
                p.returncode, p.stderr.decode("utf-8", "replace")[-2000:]))
        for line in p.stdout.splitlines():
            doc = json.loads(line)
            res[doc["input"]] = doc["findings"]
        missing = [q for q in part if q not in res]
        if missing:
            raise RuntimeError("sluice scan printed no result for %d inputs (first %s)"
                               % (len(missing), missing[0]))
    return res


def misses(samples, results):
    """The (rule_id, path) samples without a finding of their own rule."""
    return [(rid, p) for rid, p in samples
            if not any(f["rule"] == rid for f in results.get(p, ()))]
