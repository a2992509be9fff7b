#!/usr/bin/python3
"""sluice's inspection engine side by side with secretlint, in one run.

Usage: bench/scan/run.py [--sluice build/sluice] [--sample 2000] [-n 20]
                         [--seed 1] [--rounds 1] [--out bench/out] [--keep]

Both tools scan the same directories of plain files, as command-line tools
(`sluice scan FILE...`, `secretlint "DIR/**/*"` with its recommended preset):
  * benign: the system sample of tests/rules/check_injection_rules.py
    (--sample files from /usr/share/doc and man, decompressed): throughput
    (MB/s of wall time, fastest of --rounds; CPU seconds too), and files
    flagged = false positives;
  * credentials: gen_credentials.py samples, one per file (-n per rule,
    --seed): recall = share of files with any finding (both tools), and
    for sluice also with a finding of the sample's own rule.
sluice runs twice on the benign set: `--surface body` (credential and
financial rules: the job secretlint does) and `--surface all` (all rules).
Startup (sluice: loading the cached compiled rules; secretlint: node and
its rules) is measured on one empty file and reported; throughput is shown
with and without it. The engine alone (in process, files already in memory)
is measured by `build/bench_scan --corpus DIR` on the same benign files.
Prints ratios and writes JSON to --out.
secretlint is installed into bench/scan/node_modules when missing (npm).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import fp_report  # noqa: E402
import secretlint  # noqa: E402
import sluice_scan  # noqa: E402  (tests/rules, on the path via corpus)

CREDENTIAL_CATS = ("credential", "financial")


def best_of(rounds, fn, *args, **kw):
    """fn's result with the fastest (wall, cpu) of `rounds` runs."""
    best = None
    for _ in range(rounds):
        res, wall, cpu = corpus.timed(fn, *args, **kw)
        if best is None or wall < best[1]:
            best = (res, wall, cpu)
    return best


def flagged(results, cats=None):
    return {p for p, fs in results.items() if any(cats is None or f["category"] in cats
                                                  for f in fs)}


def engine_corpus(bench_scan, directory, rounds):
    """bench_scan --corpus: in-process engine seconds for the body and all surfaces."""
    p = subprocess.run([bench_scan, "--corpus", directory, "--rounds", str(rounds)],
                       capture_output=True, text=True, check=True)
    line = next(x for x in p.stdout.splitlines() if x.startswith("CORPUS "))
    return json.loads(line[len("CORPUS "):])


def mbps(nbytes, secs):
    return nbytes / secs / 1e6 if secs > 0 else float("inf")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sluice", default=sluice_scan.find_sluice())
    ap.add_argument("--bench-scan", help="bench_scan binary (default: next to --sluice)")
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("-n", type=int, default=20, help="generated samples per rule")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="timed runs per tool (fastest kept)")
    ap.add_argument("--out", default=os.path.join(corpus.REPO, "bench", "out"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the corpora")
    a = ap.parse_args(argv)
    if not a.sluice:
        ap.error("no sluice binary: build it (ninja -C build) or pass --sluice")
    if not a.bench_scan:
        a.bench_scan = os.path.join(os.path.dirname(os.path.abspath(a.sluice)), "bench_scan")
    if not os.access(a.bench_scan, os.X_OK):
        ap.error("no %s: ninja -C build bench_scan, or pass --bench-scan" % a.bench_scan)
    slint = secretlint.ensure_installed()
    tmp = tempfile.mkdtemp(prefix="sluice-scanbench-")
    try:
        return run(a, slint, tmp)
    finally:
        if a.keep:
            print("corpora kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(a, slint, tmp):
    log = lambda m: print("[bench] " + m, file=sys.stderr, flush=True)  # noqa: E731
    benign_dir, cred_dir, empty_dir = (os.path.join(tmp, d) for d in ("benign", "creds", "empty"))
    benign, benign_bytes, origin = corpus.write_benign(benign_dir, a.sample)
    creds, cred_bytes = corpus.write_credentials(cred_dir, a.seed, a.n)
    os.makedirs(empty_dir)
    empty = os.path.join(empty_dir, "empty.txt")
    open(empty, "w").close()
    log("benign: %d files, %.1f MB; credentials: %d files, %.2f MB"
        % (len(benign), benign_bytes / 1e6, len(creds), cred_bytes / 1e6))

    # Warm-up (page cache, node's module cache, sluice's compiled-rule cache).
    sluice_scan.scan_files(a.sluice, [empty], surface="all")
    secretlint.scan_dir(empty_dir)

    log("startup of each tool (one empty file)")
    _, sl_start, _ = best_of(3, sluice_scan.scan_files, a.sluice, [empty], surface="all")
    _, st_start, _ = best_of(3, secretlint.scan_dir, empty_dir)

    log("sluice, benign, --surface body and all")
    sl_body, sl_body_wall, sl_body_cpu = best_of(a.rounds, sluice_scan.scan_files, a.sluice,
                                                 benign, surface="body")
    sl_all, sl_all_wall, sl_all_cpu = best_of(a.rounds, sluice_scan.scan_files, a.sluice,
                                              benign, surface="all")
    log("engine in process (bench_scan --corpus)")
    eng = engine_corpus(a.bench_scan, benign_dir, max(a.rounds, 3))
    log("secretlint, benign")
    st_benign, st_wall, st_cpu = best_of(a.rounds, secretlint.scan_dir, benign_dir)

    log("recall on the generated credentials")
    sl_cred = sluice_scan.scan_files(a.sluice, [p for _, p in creds], surface="body")
    st_cred = secretlint.scan_dir(cred_dir)

    # ---- numbers
    def tput(wall, start):
        return {"wall_s": wall, "mb_per_s": mbps(benign_bytes, wall),
                "mb_per_s_excl_startup": mbps(benign_bytes, max(wall - start, 1e-9))}

    sl_any = {p for _, p in creds if sl_cred.get(p)}
    sl_own = {p for _, p in creds} - {p for _, p in sluice_scan.misses(creds, sl_cred)}
    st_any = {p for _, p in creds if p in st_cred}
    per_rule = {}
    for rid, p in creds:
        r = per_rule.setdefault(rid, {"n": 0, "sluice": 0, "secretlint": 0})
        r["n"] += 1
        r["sluice"] += p in sl_own
        r["secretlint"] += p in st_any
    secretlint_only = sorted(p for p in st_any - sl_any)
    fp_sl_cred = flagged(sl_body, CREDENTIAL_CATS)
    fp_sl_all = flagged(sl_all)
    fp_st = set(st_benign)
    nb = max(len(benign), 1)
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "loadavg": os.getloadavg(),
        "secretlint_version": secretlint.version(),
        "corpus": {"benign_files": len(benign), "benign_bytes": benign_bytes,
                   "credential_files": len(creds), "credential_bytes": cred_bytes,
                   "rules_generated": len(per_rule), "seed": a.seed, "rounds": a.rounds},
        "startup_s": {"sluice": sl_start, "secretlint": st_start},
        "throughput": {"sluice_body": tput(sl_body_wall, sl_start),
                       "sluice_all": tput(sl_all_wall, sl_start),
                       "engine_body": tput(eng["body_s"], 0.0),
                       "engine_all": tput(eng["all_s"], 0.0),
                       "secretlint": tput(st_wall, st_start)},
        "cpu_s": {"sluice_body": sl_body_cpu, "sluice_all": sl_all_cpu, "secretlint": st_cpu},
        "recall": {"sluice_own_rule": len(sl_own) / len(creds),
                   "sluice_any": len(sl_any) / len(creds),
                   "secretlint_any": len(st_any) / len(creds),
                   "secretlint_only_files": [os.path.relpath(p, cred_dir)
                                             for p in secretlint_only],
                   "per_rule": per_rule},
        "false_positives": {
            "sluice_credential_rules": len(fp_sl_cred) / nb,
            "sluice_all_rules": len(fp_sl_all) / nb,
            "secretlint": len(fp_st) / nb,
            "sluice_per_rule": fp_report.per_rule(sl_all)[0],
            "secretlint_per_rule": {r: sum(r in v for v in st_benign.values())
                                    for r in {x for v in st_benign.values() for x in v}},
            "sluice_files": {origin[p]: sorted({f["rule"] for f in sl_all[p]})
                             for p in fp_sl_all},
            "secretlint_files": {origin[p]: sorted(set(v)) for p, v in st_benign.items()
                                 if p in origin},
        },
    }

    # ---- report
    t = doc["throughput"]
    print("\ncorpus: %d benign files (%.1f MB), %d generated credential files (%d rules); "
          "load average %.1f" % (len(benign), benign_bytes / 1e6, len(creds), len(per_rule),
                                 doc["loadavg"][0]))
    print("%-30s %9s %9s %12s %14s" % ("benign corpus", "wall s", "CPU s", "MB/s", "MB/s -start"))
    for name, k, cpu in (("sluice scan --surface body", "sluice_body", sl_body_cpu),
                         ("sluice scan --surface all", "sluice_all", sl_all_cpu),
                         ("engine, body (bench_scan)", "engine_body", eng["body_s"]),
                         ("engine, all (bench_scan)", "engine_all", eng["all_s"]),
                         ("secretlint (recommended)", "secretlint", st_cpu)):
        print("%-30s %9.2f %9.2f %12.2f %14.2f" % (name, t[k]["wall_s"], cpu, t[k]["mb_per_s"],
                                                  t[k]["mb_per_s_excl_startup"]))
    print("startup: sluice %.3f s, secretlint %.3f s" % (sl_start, st_start))
    doc["cpu_s"]["engine_body"], doc["cpu_s"]["engine_all"] = eng["body_s"], eng["all_s"]
    for k in ("sluice_body", "sluice_all", "engine_body", "engine_all"):
        print("ratio %s / secretlint: %.1fx throughput (%.1fx both without startup), %.1fx CPU"
              % (k, t[k]["mb_per_s"] / t["secretlint"]["mb_per_s"],
                 t[k]["mb_per_s_excl_startup"] / t["secretlint"]["mb_per_s_excl_startup"],
                 st_cpu / max(doc["cpu_s"][k], 1e-9)))
    r = doc["recall"]
    print("recall on %d generated credentials: sluice %.2f%% (own rule; any finding %.2f%%), "
          "secretlint %.2f%%; found by secretlint but not sluice: %d"
          % (len(creds), 100 * r["sluice_own_rule"], 100 * r["sluice_any"],
             100 * r["secretlint_any"], len(secretlint_only)))
    f = doc["false_positives"]
    print("benign files flagged: sluice credential+financial %d (%.3f%%), sluice all rules %d "
          "(%.3f%%), secretlint %d (%.3f%%)"
          % (len(fp_sl_cred), 100 * f["sluice_credential_rules"], len(fp_sl_all),
             100 * f["sluice_all_rules"], len(fp_st), 100 * f["secretlint"]))
    for name, per in (("sluice", f["sluice_per_rule"]), ("secretlint", f["secretlint_per_rule"])):
        if per:
            print("  %s: %s" % (name, ", ".join("%s %d" % kv for kv in
                                                sorted(per.items(), key=lambda x: -x[1]))))
    os.makedirs(a.out, exist_ok=True)
    outp = os.path.join(a.out, "scan-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(outp, "w") as fh:
        json.dump(doc, fh, indent=2)
    print("wrote %s" % outp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
