#!/usr/bin/python3
"""Per-rule false positives of the C engine on a benign corpus.

Usage: bench/scan/fp_report.py [--sluice build/sluice] [--sample 2000]
                               [--surface all] [--all] [--markdown] [PATH...]

Runs `sluice scan --surface S` (every built-in rule by default) over the
system sample of tests/rules/check_injection_rules.py (--sample files from
/usr/share/doc and man, decompressed into a temp dir), plus every file under
the given PATHs, and prints per rule the number of files it flags, so noisy
rules are visible; --all also lists the rules with none. Only rule ids and
file names are printed, never matched text.
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import sluice_scan  # noqa: E402  (tests/rules, on the path via corpus)


def rule_categories(sluice):
    """{rule id: category} of the rules the binary loads."""
    import json
    import subprocess

    p = subprocess.run([sluice, "scan", "--list-rules"], capture_output=True, text=True, check=True)
    doc = json.loads(p.stdout)
    rules = doc["rules"] if isinstance(doc, dict) else doc
    return {r["id"]: r["category"] for r in rules}


def per_rule(results):
    """{rule id: files flagged} and the set of flagged files."""
    counts, flagged = {}, set()
    for path, findings in results.items():
        ids = {f["rule"] for f in findings}
        if ids:
            flagged.add(path)
        for rid in ids:
            counts[rid] = counts.get(rid, 0) + 1
    return counts, flagged


def report(results, cats, show_all=False, markdown=False, show_files=0, origin=None):
    counts, flagged = per_rule(results)
    n = max(len(results), 1)
    by_cat = {}
    for path, findings in results.items():
        for c in {f["category"] for f in findings}:
            by_cat[c] = by_cat.get(c, 0) + 1
    print("files: %d, with a finding: %d (%.3f%%)" % (len(results), len(flagged),
                                                       100.0 * len(flagged) / n))
    for c in sorted(by_cat):
        print("  %-16s %d files (%.3f%%)" % (c, by_cat[c], 100.0 * by_cat[c] / n))
    rows = sorted(cats.items() if show_all else [(r, cats.get(r, "?")) for r in counts],
                  key=lambda x: (-counts.get(x[0], 0), x[1], x[0]))
    if markdown:
        print("\n| rule | category | files flagged | share |\n|---|---|---|---|")
        for rid, cat in rows:
            print("| `%s` | %s | %d | %.3f%% |" % (rid, cat, counts.get(rid, 0),
                                                 100.0 * counts.get(rid, 0) / n))
    else:
        for rid, cat in rows:
            print("  %-44s %-15s %5d  %.3f%%" % (rid, cat, counts.get(rid, 0),
                                                100.0 * counts.get(rid, 0) / n))
    for p in sorted(flagged)[:show_files]:
        print("  %s: %s" % ((origin or {}).get(p, p),
                            ", ".join(sorted({f["rule"] for f in results[p]}))))
    return counts, flagged


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", help="more files or directories to scan")
    ap.add_argument("--sluice", default=sluice_scan.find_sluice())
    ap.add_argument("--sample", type=int, default=2000,
                    help="files of the system sample (0: none)")
    ap.add_argument("--surface", default="all")
    ap.add_argument("--all", action="store_true", help="list every rule, also those with 0")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--show", type=int, default=0, help="list up to N flagged files")
    a = ap.parse_args(argv)
    if not a.sluice:
        ap.error("no sluice binary: build it or pass --sluice")
    tmp = tempfile.mkdtemp(prefix="sluice-fp-")
    try:
        files, origin = [], {}
        if a.sample:
            files, _, origin = corpus.write_benign(os.path.join(tmp, "benign"), a.sample)
        for root in a.paths:
            if os.path.isfile(root):
                files.append(root)
            for d, _dirs, names in os.walk(root):
                files += [os.path.join(d, x) for x in names
                          if os.path.isfile(os.path.join(d, x))
                          and not os.path.islink(os.path.join(d, x))]
        results = sluice_scan.scan_files(a.sluice, files, surface=a.surface)
        report(results, rule_categories(a.sluice), a.all, a.markdown, a.show, origin)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
