#!/usr/bin/python3
"""Estimate the false-positive rate of the rules on a benign corpus (reference matcher).

Usage: tests/rules/fp_scan.py [--category credential] [--show N] PATH...

Scans every regular file under the PATHs (.gz files are decompressed, files are
cut at --max-bytes) with all rules compiled into one Vectorscan database
(libhs via ctypes, leftmost start of match), runs the Python reference
validators and min_entropy on each candidate, and prints the share of files
with at least one finding, overall and per rule. Raw text only: the engine's
decoded variants are not scanned here, so this is a lower bound.
Values are never printed: only rule ids, file names and offsets.
"""

import argparse
import glob
import gzip
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_rules import REPO, Checker  # noqa: E402


def read(path, limit):
    with open(path, "rb") as f:
        data = f.read(limit if not path.endswith(".gz") else None)
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)[:limit]
        except (OSError, EOFError):
            pass
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--category", action="append", help="only rules of this category")
    ap.add_argument("--max-bytes", type=int, default=1 << 20)
    ap.add_argument("--show", type=int, default=0, help="list up to N flagged files")
    args = ap.parse_args()
    rules = []
    for path in sorted(glob.glob(os.path.join(REPO, "rules", "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            rules += yaml.safe_load(f)["rules"]
    if args.category:
        rules = [r for r in rules if r["category"] in args.category]
    ck = Checker(os.path.join(REPO, "rules"), True, False)
    hs = ck.hs
    # Leftmost start of match where the pattern allows it (as the engine does;
    # without it the validator sees the span from the text's start).
    som = [hs.SOM_LEFTMOST] * len(rules)
    while True:
        db, err = hs.compile_multi([r["pattern"] for r in rules],
                                   [r.get("flags") for r in rules], extra=som)
        if not err:
            break
        if err[1] < 0 or not som[err[1]]:
            raise SystemExit("compile failed: %s (rule %s)" % (
                err[0], rules[err[1]]["id"] if err[1] >= 0 else "?"))
        som[err[1]] = 0
    scratch = hs.scratch(db)
    files, flagged, per_rule, shown = 0, 0, {}, 0
    for root in args.paths:
        walker = [(root, [], [os.path.basename(root)])] if os.path.isfile(root) else os.walk(root)
        for d, _dirs, names in walker:
            for name in names:
                p = os.path.join(d, name) if not os.path.isfile(root) else root
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                data = read(p, args.max_bytes)
                files += 1
                hits = []
                for i, frm, to in hs.scan(db, data, scratch):
                    if any(h[0] == i for h in hits):
                        continue
                    if ck.accepts(rules[i], data[frm:to].decode("utf-8", "replace"), strict=False):
                        hits.append((i, frm))
                if hits:
                    flagged += 1
                    for i, _ in hits:
                        per_rule[rules[i]["id"]] = per_rule.get(rules[i]["id"], 0) + 1
                    if shown < args.show:
                        shown += 1
                        print("  %s: %s" % (p, ", ".join("%s@%d" % (rules[i]["id"], o) for i, o in hits)))
    print("files: %d, flagged: %d (%.3f%%)" % (files, flagged, 100.0 * flagged / max(files, 1)))
    for rid, n in sorted(per_rule.items(), key=lambda x: -x[1]):
        print("  %-40s %d" % (rid, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
