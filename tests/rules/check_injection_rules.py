#!/usr/bin/python3
"""Checker for the injection, tool-poisoning and shell rule files.

What it does (exit 0 only when all of it holds):
  1. schema: every rule in rules/injection.yaml, rules/tool-poisoning.yaml and
     rules/shell.yaml follows /work/rules-format.md (required keys, id syntax,
     unique ids across every rules/*.yaml, category matching its file, known
     severity/flags/validators, >= 2 match and >= 2 no_match examples);
  2. Hyperscan compatibility: no lookaround, backreferences, \\K, atomic or
     possessive groups, conditionals, recursion; a pattern must not match the
     empty string; non-ASCII patterns carry the utf8 flag. When libhs (Vectorscan)
     is loadable, every pattern is also compiled by it with its flags;
  3. examples: each example is expanded the way the engine expands input (raw,
     decoded layers, folded variant, homoglyph-folded variant, leet variant for
     rules asking for it; a Python approximation) and each pattern runs with
     Python `re`: every match example must match, no no_match example may. When
     libhs is loadable the same verdict is cross-checked with Hyperscan itself;
  4. false positives: ALL rules run over tests/rules/benign/ (must stay clean)
     and over a deterministic sample of real benign text on this machine
     (/usr/share/doc *.txt, README*, changelog*, /usr/share/man, first 64 KiB
     per file); the share of files with any finding must stay below 0.5 %.
     Offending files and rules are printed so rules can be tightened.

Usage: tests/rules/check_injection_rules.py [--sample N] [--no-system-corpus]
       [--show N] [--repo DIR]
"""

import argparse
import base64
import binascii
import glob
import gzip
import html
import os
import random
import re
import sys
import time
import unicodedata
import urllib.parse

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("python3-yaml missing: apt-get install -y python3-yaml")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402

MY_FILES = {
    "injection.yaml": "injection",
    "tool-poisoning.yaml": "tool-poisoning",
    "shell.yaml": "shell",
}
REQUIRED = ("id", "description", "category", "severity", "pattern", "examples")
OPTIONAL = ("flags", "validator", "min_entropy", "normalize")
CATEGORIES = {"credential", "financial", "injection", "tool-poisoning", "shell"}
SEVERITIES = {"low", "medium", "high", "critical"}
FLAGS = {"caseless": re.I, "dotall": re.S, "multiline": re.M, "utf8": 0}
VALIDATORS = {"luhn", "iban", "bip39", "base58check", "crc32-base62", "jwt",
              "ssn", "pem", "entropy"}
ID_RE = re.compile(r"^[a-z0-9-]+$")
MIN_EXAMPLES = 2
FP_LIMIT = 0.005
FILE_CAP = 64 * 1024
COMPILE_LIMIT = 3.0

# Constructs Hyperscan refuses (it reports them at compile time; we want the
# error here, with the rule id, before the engine refuses the whole set).
UNSUPPORTED = [
    (re.compile(r"\(\?<?[=!]"), "lookaround"),
    (re.compile(r"\(\?>"), "atomic group"),
    (re.compile(r"\\[1-9]"), "backreference"),
    (re.compile(r"\\[gk][<{'0-9-]"), "backreference"),
    (re.compile(r"\(\?P[=>]"), "python-only group syntax"),
    (re.compile(r"\\K"), "\\K"),
    (re.compile(r"\\[RXC]"), "\\R/\\X/\\C"),
    (re.compile(r"\(\?\("), "conditional"),
    (re.compile(r"\(\?(R|[0-9+-])"), "recursion/subroutine"),
    (re.compile(r"\(\*"), "backtracking verb"),
    (re.compile(r"(?<!\\)[*+?}]\+"), "possessive quantifier"),
]

ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u206f\ufeff\U000e0000-\U000e007f]")
WS = re.compile(r"\s+")
LEET = str.maketrans({"1": "i", "0": "o", "3": "e", "4": "a", "5": "s",
                      "7": "t", "@": "a", "$": "s"})
# A small confusables table (Cyrillic, Greek, a few symbols -> ASCII), the
# subset attackers use to dodge "ignore previous instructions" filters.
HOMOGLYPH = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
    "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ո": "n",
    "ѵ": "v", "ԝ": "w", "к": "k", "м": "m", "т": "t", "в": "b", "н": "h",
    "α": "a", "ε": "e", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "ν": "v",
    "ι": "i", "κ": "k", "χ": "x", "ѡ": "w", "ℓ": "l", "ı": "i",
})


def fold(text):
    """Engine's folded variant (approximation): NFKC, invisible characters
    removed, whitespace collapsed to one space, lowercase."""
    t = unicodedata.normalize("NFKC", text)
    t = ZERO_WIDTH.sub("", t)
    t = WS.sub(" ", t)
    return t.lower()


B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){12,}")
UESC = re.compile(r"\\u([0-9a-fA-F]{4})")


def _printable(b):
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not s:
        return None
    good = sum(1 for c in s if c.isprintable() or c in "\r\n\t")
    return s if good >= 0.9 * len(s) else None


def decoded_layers(text, depth=3):
    """Decoded variants: percent (to a fixed point), HTML entities, \\uXXXX,
    base64 (std/url-safe/unpadded) and hex runs; nested up to `depth`."""
    out = []
    frontier = [text]
    seen = {text}
    for _ in range(depth):
        nxt = []
        for t in frontier:
            cands = []
            p = t
            for _ in range(4):
                q = urllib.parse.unquote(p)
                if q == p:
                    break
                p = q
            cands.append(p)
            cands.append(html.unescape(t))
            cands.append(UESC.sub(lambda m: chr(int(m.group(1), 16)), t))
            for m in B64_RUN.finditer(t):
                s = m.group(0).rstrip("=")
                s = s.replace("-", "+").replace("_", "/")
                try:
                    b = base64.b64decode(s + "=" * (-len(s) % 4))
                except (binascii.Error, ValueError):
                    continue
                d = _printable(b)
                if d:
                    cands.append(d)
            for m in HEX_RUN.finditer(t):
                d = _printable(bytes.fromhex(m.group(0)))
                if d:
                    cands.append(d)
            for c in cands:
                if c not in seen:
                    seen.add(c)
                    out.append(c)
                    nxt.append(c)
        frontier = nxt
        if not frontier:
            break
    return out


def variants(text):
    """(plain variants, leet variants) the engine would scan for `text`."""
    raw = [text] + decoded_layers(text)
    plain = []
    for r in raw:
        f = fold(r)
        plain.extend([r, f, f.translate(HOMOGLYPH)])
    plain = list(dict.fromkeys(plain))
    leet = list(dict.fromkeys(p.translate(LEET) for p in plain))
    return plain, leet


# ---------------------------------------------------------------- Hyperscan
def load_hs():
    return hslib.load()


def compile_multi(hs, patterns, flags):
    """One block-mode database, one report per pattern (ids index `patterns`)."""
    db, err = hs.compile_multi(patterns, flags, extra=hs.SINGLEMATCH)
    if err:
        raise RuntimeError("hs_compile_multi: %s (pattern %d)" % err)
    return db


# ---------------------------------------------------------------- checks
class Rule:
    def __init__(self, d, fname):
        self.d = d
        self.fname = fname
        self.id = d.get("id")
        self.flags = d.get("flags") or []
        self.leet = "leet" in (d.get("normalize") or [])
        reflags = 0
        for f in self.flags:
            reflags |= FLAGS.get(f, 0)
        self.rx = re.compile(d["pattern"], reflags)

    def hit(self, plain, leet):
        for v in plain:
            if self.rx.search(v):
                return v
        if self.leet:
            for v in leet:
                if self.rx.search(v):
                    return v
        return None


def schema_errors(d, fname, want_cat):
    errs = []
    if not isinstance(d, dict):
        return ["rule is not a mapping"]
    for k in REQUIRED:
        if k not in d:
            errs.append("missing key %r" % k)
    for k in d:
        if k not in REQUIRED and k not in OPTIONAL:
            errs.append("unknown key %r" % k)
    if errs:
        return errs
    if not isinstance(d["id"], str) or not ID_RE.match(d["id"]):
        errs.append("id must match [a-z0-9-]+")
    desc = d["description"]
    if not isinstance(desc, str) or not desc.strip() or "\n" in desc:
        errs.append("description must be one non-empty line")
    if d["category"] not in CATEGORIES:
        errs.append("unknown category %r" % d["category"])
    elif d["category"] != want_cat:
        errs.append("category %r in %s (want %r)" % (d["category"], fname,
                                                     want_cat))
    if d["severity"] not in SEVERITIES:
        errs.append("unknown severity %r" % d["severity"])
    flags = d.get("flags", [])
    if not isinstance(flags, list) or any(f not in FLAGS for f in flags):
        errs.append("flags must be a list of %s" % sorted(FLAGS))
    elif len(set(flags)) != len(flags):
        errs.append("duplicate flags")
    if "validator" in d and d["validator"] not in VALIDATORS:
        errs.append("unknown validator %r" % d["validator"])
    if "min_entropy" in d and not isinstance(d["min_entropy"], (int, float)):
        errs.append("min_entropy must be a number")
    if "normalize" in d:
        if d["normalize"] != ["leet"]:
            errs.append("normalize must be [leet]")
        elif d["category"] != "injection":
            errs.append("normalize is for injection rules only")
    pat = d["pattern"]
    if not isinstance(pat, str) or not pat:
        errs.append("pattern must be a non-empty string")
        return errs
    for rx, what in UNSUPPORTED:
        if rx.search(pat):
            errs.append("pattern uses %s (unsupported by Hyperscan)" % what)
    if any(ord(c) > 127 for c in pat) and "utf8" not in flags:
        errs.append("non-ASCII pattern needs the utf8 flag")
    if pat != pat.lower().replace("\\s", "\\s") and "caseless" in flags:
        # Upper-case letters are only legal as escapes (\S, \W, \D, \B).
        bare = re.sub(r"\\[A-Za-z]", "", pat)
        if bare != bare.lower():
            errs.append("caseless pattern should be written in lower case")
    ex = d["examples"]
    if not isinstance(ex, dict):
        errs.append("examples must be a mapping")
    else:
        for k in ("match", "no_match"):
            v = ex.get(k)
            if not isinstance(v, list) or len(v) < MIN_EXAMPLES or \
                    not all(isinstance(s, str) and s for s in v):
                errs.append("examples.%s needs >= %d non-empty strings" %
                            (k, MIN_EXAMPLES))
        extra = set(ex) - {"match", "no_match"}
        if extra:
            errs.append("unknown examples keys %s" % sorted(extra))
    return errs


def other_ids(rules_dir):
    ids = {}
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.yaml"))):
        if os.path.basename(path) in MY_FILES:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
        except (yaml.YAMLError, OSError):
            continue  # Not ours to validate.
        for r in doc.get("rules") or []:
            if isinstance(r, dict) and "id" in r:
                ids[r["id"]] = os.path.basename(path)
    return ids


def load_rules(repo, problems):
    rules_dir = os.path.join(repo, "rules")
    foreign = other_ids(rules_dir)
    seen = {}
    rules = []
    for fname, cat in MY_FILES.items():
        path = os.path.join(rules_dir, fname)
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            problems.append("%s: %s" % (fname, e))
            continue
        if not isinstance(doc, dict) or set(doc) != {"rules"} or \
                not isinstance(doc["rules"], list):
            problems.append("%s: top level must be {rules: [...]}" % fname)
            continue
        for i, d in enumerate(doc["rules"]):
            rid = d.get("id") if isinstance(d, dict) else None
            where = "%s:%s" % (fname, rid or "#%d" % i)
            errs = schema_errors(d, fname, cat)
            if rid in seen:
                errs.append("duplicate id (also in %s)" % seen[rid])
            if rid in foreign:
                errs.append("id collides with %s" % foreign[rid])
            seen[rid] = fname
            if not errs:
                try:
                    r = Rule(d, fname)
                    if r.rx.search(""):
                        errs.append("pattern matches the empty string")
                    else:
                        rules.append(r)
                except re.error as e:
                    errs.append("python re: %s" % e)
            problems.extend("%s: %s" % (where, e) for e in errs)
    return rules


def check_examples(rules, hs, problems):
    for r in rules:
        db = None
        if hs:
            t0 = time.monotonic()
            db, err = hs.compile(r.d["pattern"], r.flags, extra=hs.SINGLEMATCH)
            took = time.monotonic() - t0
            if err:
                problems.append("%s: hyperscan: %s" % (r.id, err[0]))
            elif took > COMPILE_LIMIT:
                # A pattern this costly to compile slows every rule reload.
                problems.append("%s: hyperscan compile took %.1fs (> %.0fs)"
                                % (r.id, took, COMPILE_LIMIT))
        for kind in ("match", "no_match"):
            for s in r.d["examples"][kind]:
                plain, leet = variants(s)
                got = r.hit(plain, leet) is not None
                if got != (kind == "match"):
                    problems.append("%s: %s example %s: %r" % (
                        r.id, kind, "missed" if got is False else "matched",
                        s))
                    continue
                if db:
                    cands = plain + (leet if r.leet else [])
                    hgot = any(hs.scan(db, v, first=True) for v in cands)
                    if hgot != got:
                        problems.append(
                            "%s: python re and hyperscan disagree on %r" %
                            (r.id, s))
        if db:
            hs.free(db)


def read_text(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read(FILE_CAP)
        else:
            with open(path, "rb") as f:
                data = f.read(FILE_CAP)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", "replace")


def system_sample(n, seed=7):
    pats = ["/usr/share/doc/**/*.txt", "/usr/share/doc/**/README*",
            "/usr/share/doc/**/changelog*", "/usr/share/doc/**/NEWS*",
            "/usr/share/man/**/*.gz"]
    files = set()
    for p in pats:
        for f in glob.glob(p, recursive=True):
            if os.path.isfile(f) and not os.path.islink(f):
                files.add(f)
    files = sorted(files)
    rnd = random.Random(seed)
    return sorted(rnd.sample(files, min(n, len(files))))


class HsCorpusScanner:
    """All rules in one Hyperscan database (plus one for the leet rules):
    the corpus runs through it, Python re then confirms each candidate."""

    def __init__(self, hs, rules):
        self.hs = hs
        self.rules = rules
        self.leet_rules = [r for r in rules if r.leet]
        self.db = compile_multi(hs, [r.d["pattern"] for r in rules],
                                [r.flags for r in rules])
        self.s = hs.scratch(self.db)
        self.ldb = self.ls = None
        if self.leet_rules:
            self.ldb = compile_multi(
                hs, [r.d["pattern"] for r in self.leet_rules],
                [r.flags for r in self.leet_rules])
            self.ls = hs.scratch(self.ldb)

    def candidates(self, plain, leet):
        out = set()
        for v in plain:
            out |= {self.rules[i].id for i, _f, _t in self.hs.scan(self.db, v, self.s)}
        if self.ldb:
            for v in leet:
                out |= {self.leet_rules[i].id
                        for i, _f, _t in self.hs.scan(self.ldb, v, self.ls)}
        return out


def scan_corpus(rules, paths, label, show, fast=None):
    flagged = {}
    per_rule = {}
    scanned = 0
    for p in paths:
        text = read_text(p)
        if text is None:
            continue
        scanned += 1
        plain, leet = variants(text)
        cands = fast.candidates(plain, leet) if fast else None
        for r in rules:
            if cands is not None and r.id not in cands:
                continue
            v = r.hit(plain, leet)
            if v is None:
                if cands is not None:
                    print("   note: hyperscan-only hit %s in %s" % (r.id, p))
                    flagged.setdefault(p, []).append((r.id, "(hyperscan)"))
                    per_rule[r.id] = per_rule.get(r.id, 0) + 1
                continue
            m = r.rx.search(v) or r.rx.search(v.translate(LEET))
            ex = m.group(0) if m else "?"
            flagged.setdefault(p, []).append((r.id, ex))
            per_rule[r.id] = per_rule.get(r.id, 0) + 1
    rate = len(flagged) / scanned if scanned else 0.0
    print("%s: %d files scanned, %d with a finding (%.3f%%)" % (
        label, scanned, len(flagged), 100 * rate))
    for rid, c in sorted(per_rule.items(), key=lambda x: -x[1]):
        print("   %-40s %d files" % (rid, c))
    for p in list(flagged)[:show]:
        for rid, ex in flagged[p]:
            print("   %s: %s: %r" % (p, rid, ex[:160]))
    return scanned, len(flagged)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--no-system-corpus", action="store_true")
    ap.add_argument("--show", type=int, default=40)
    ap.add_argument("--python-only", action="store_true",
                    help="scan the corpora with Python re only (slow)")
    a = ap.parse_args()

    problems = []
    rules = load_rules(a.repo, problems)
    hs = load_hs()
    if not hs:
        print("note: libhs not loadable; Hyperscan compile check skipped")
    check_examples(rules, hs, problems)
    counts = {}
    for r in rules:
        counts[r.d["category"]] = counts.get(r.d["category"], 0) + 1
    print("rules: %s" % ", ".join("%s=%d" % kv for kv in sorted(counts.items())))
    for p in problems:
        print("FAIL " + p)

    ok = not problems
    bdir = os.path.join(a.repo, "tests", "rules", "benign")
    bfiles = sorted(glob.glob(os.path.join(bdir, "**", "*"), recursive=True))
    bfiles = [f for f in bfiles if os.path.isfile(f)]
    if not bfiles:
        print("FAIL no benign corpus under %s" % bdir)
        ok = False
    fast = None
    if hs and not a.python_only and not problems:
        t0 = time.monotonic()
        fast = HsCorpusScanner(hs, rules)
        print("hyperscan: all %d rules compiled in %.1fs" % (
            len(rules), time.monotonic() - t0))
    _, bad = scan_corpus(rules, bfiles, "benign corpus", a.show, fast)
    if bad:
        print("FAIL findings on the committed benign corpus")
        ok = False
    if not a.no_system_corpus:
        n, bad = scan_corpus(rules, system_sample(a.sample),
                             "system sample", a.show, fast)
        if n and bad / n >= FP_LIMIT:
            print("FAIL false-positive rate %.3f%% >= %.1f%%" % (
                100 * bad / n, 100 * FP_LIMIT))
            ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
