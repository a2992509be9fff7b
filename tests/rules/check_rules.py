#!/usr/bin/python3
"""Check every rules/*.yaml against the rule-format contract and its own examples.

Usage: tests/rules/check_rules.py [--rules-dir DIR] [--no-hyperscan] [-v]

For each rule it checks
  * the schema: required keys, unique ids, enum values, validator names;
  * that the pattern avoids constructs Hyperscan does not support
    (lookaround, backreferences, \\K, possessive and atomic groups, ...)
    and cannot match the empty string;
  * its examples with Python `re` (flags translated), emulating Hyperscan's
    reporting (every end offset, with the leftmost start for that end):
      - every `match` example yields a finding: the pattern matches and the
        named validator (Python re-implementation in formats.py) and
        min_entropy accept the match. Credential and financial rules must
        match the raw text; other categories may match a normalised variant.
      - no `no_match` example yields a finding, in the raw text or in any of
        the decoded / folded variants the engine also scans;
  * when libhs (Vectorscan) is installed: that the pattern compiles in block
    mode and in streaming mode with leftmost start-of-match, and that the
    examples give the same verdicts with real Hyperscan matching.

Exit status 0 when everything holds, 1 otherwise. Prints one line per problem
and a closing 'N passed, N failed' line (N = rules).
"""

import argparse
import base64
import binascii
import glob
import html
import os
import re
import sys
import unicodedata
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import formats  # noqa: E402
import hslib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CATEGORIES = {"credential", "financial", "injection", "tool-poisoning", "shell"}
SEVERITIES = {"low", "medium", "high", "critical"}
FLAGS = {"caseless", "dotall", "multiline", "utf8"}
NORMALIZERS = {"leet"}
REQUIRED = ("id", "description", "category", "severity", "pattern", "examples")
OPTIONAL = ("flags", "validator", "min_entropy", "normalize")
# The categories this checker's author wrote: held to 2+2 examples and to
# matching on the raw text (credential formats are case- and byte-exact).
RAW_CATEGORIES = {"credential", "financial"}
MIN_EXAMPLES = {"credential": 2, "financial": 2}
DEFAULT_ENTROPY = 3.5
MAX_EXAMPLE_FOR_EMULATION = 20000

# File name -> category every rule in it must have.
FILE_CATEGORY = [
    (re.compile(r"credentials(-[a-z0-9-]+)?\.yaml$"), "credential"),
    (re.compile(r"financial\.yaml$"), "financial"),
    (re.compile(r"injection\.yaml$"), "injection"),
    (re.compile(r"tool-poisoning\.yaml$"), "tool-poisoning"),
    (re.compile(r"shell\.yaml$"), "shell"),
]


# ------------------------------------------------------------------ loading
class LineLoader(yaml.SafeLoader):
    """SafeLoader that records the 1-based line of every mapping as __line__."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


# ------------------------------------------------------------------ pattern lint
def hyperscan_lint(pattern):
    """Return a list of reasons the pattern is not Hyperscan-compatible."""
    problems = []
    i, n = 0, len(pattern)
    in_class = False
    prev_quant = False  # previous token was a quantifier
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if not in_class:
                if nxt.isdigit() and nxt != "0":
                    problems.append("backreference \\%s" % nxt)
                elif nxt in "gk":
                    problems.append("backreference \\%s" % nxt)
                elif nxt == "K":
                    problems.append("\\K is not supported")
                elif nxt in "CXRG":
                    problems.append("\\%s is not supported" % nxt)
            i += 2
            prev_quant = False
            continue
        if in_class:
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            # a ']' right after '[' or '[^' is literal
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            prev_quant = False
            continue
        if c == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2:]
            if rest.startswith(("=", "!", "<=", "<!")):
                problems.append("lookaround (%s" % pattern[i:i + 4])
            elif rest.startswith(">"):
                problems.append("atomic group (?>")
            elif rest.startswith(("P<", "P=", "P>", "<", "'")):
                problems.append("named group/reference")
            elif rest.startswith(("(", "R", "|", "&", "C")) or rest[:1].isdigit():
                problems.append("unsupported group construct (?%s" % rest[:1])
            else:
                m = re.match(r"[a-zA-Z-]*([:)])", rest)
                if m and m.group(1) == ")":
                    problems.append("unscoped inline flags (use (?i:...) or flags:)")
        if c in "*+?" and prev_quant and c == "+":
            problems.append("possessive quantifier")
        if c in "*+?":
            # '?' after a quantifier is laziness, still a quantifier suffix
            prev_quant = not (c == "?" and prev_quant)
        elif c == "}":
            prev_quant = True
        else:
            prev_quant = False
        i += 1
    return problems


def to_python_pattern(pattern):
    """Translate the PCRE syntax Hyperscan accepts into Python `re` syntax."""

    def hexrepl(m):
        cp = int(m.group(1), 16)
        return "\\x%02x" % cp if cp < 0x100 else (
            "\\u%04x" % cp if cp < 0x10000 else "\\U%08x" % cp)

    out = re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", hexrepl, pattern)
    out = out.replace("\\z", "\\Z").replace("\\A", "\\A")
    return out


def python_flags(flags):
    f = 0
    for name in flags or ():
        if name == "caseless":
            f |= re.IGNORECASE
        elif name == "dotall":
            f |= re.DOTALL
        elif name == "multiline":
            f |= re.MULTILINE
    if "utf8" not in (flags or ()):
        f |= re.ASCII
    return f


# ------------------------------------------------------------------ matching
class PyMatcher:
    """Emulates Hyperscan's reports with Python `re`.

    Hyperscan reports every end offset at which the pattern matches; with
    leftmost start-of-match, each report carries the leftmost start for that
    end. `candidates` returns those (start, end) pairs; `greedy` returns the
    spans of re.finditer (the narrow reading used for must-match examples).
    """

    def __init__(self, pattern, flags):
        self.src = to_python_pattern(pattern)
        self.flags = python_flags(flags)
        self.rx = re.compile(self.src, self.flags)
        self._end_cache = {}

    def greedy(self, text):
        return [m.span() for m in self.rx.finditer(text)]

    def candidates(self, text):
        if not self.rx.search(text):
            return []
        if len(text) > MAX_EXAMPLE_FOR_EMULATION:
            return self.greedy(text)
        out = []
        n = len(text)
        for end in range(0, n + 1):
            rest = n - end
            rx = self._end_cache.get(rest)
            if rx is None:
                rx = re.compile(
                    "(?:%s)(?=[\\s\\S]{%d}\\Z)" % (self.src, rest), self.flags
                )
                self._end_cache[rest] = rx
            m = rx.search(text)
            if m and m.end() == end:
                out.append((m.start(), end))
        return out


Hyperscan = hslib.Hyperscan


def load_hyperscan():
    return hslib.load()


# ------------------------------------------------------------------ variants
ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\U000e0000-\U000e007f]")
CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
    "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "Х": "X",
})
LEET = str.maketrans({"1": "i", "0": "o", "3": "e", "4": "a", "5": "s", "7": "t",
                      "@": "a", "$": "s"})


def decoded_variants(text, depth=2):
    """Texts the engine also scans: decodings of the input, a few levels deep."""
    seen = {text}
    frontier = [text]
    for _ in range(depth):
        nxt = []
        for t in frontier:
            cands = []
            p = t
            for _i in range(4):
                q = urllib.parse.unquote(p)
                if q == p:
                    break
                p = q
            cands.append(p)
            cands.append(html.unescape(t))
            cands.append(re.sub(r"\\u([0-9a-fA-F]{4})",
                                lambda m: chr(int(m.group(1), 16)), t))
            for run in re.findall(r"[A-Za-z0-9+/_-]{16,}={0,2}", t):
                std = run.rstrip("=").replace("-", "+").replace("_", "/")
                try:
                    s = base64.b64decode(std + "=" * (-len(std) % 4)).decode("utf-8")
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    continue
                if s.isprintable() or "\n" in s:
                    cands.append(s)
            for run in re.findall(r"(?:[0-9a-fA-F]{2}){8,}", t):
                try:
                    cands.append(bytes.fromhex(run).decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    pass
            for c in cands:
                if c not in seen:
                    seen.add(c)
                    nxt.append(c)
        frontier = nxt
    return list(seen)


def folded(text, leet=False):
    t = unicodedata.normalize("NFKC", text)
    t = ZERO_WIDTH.sub("", t).translate(CONFUSABLES)
    t = re.sub(r"\s+", " ", t).lower()
    if leet:
        t = t.translate(LEET)
    return t


def variants_for(rule, text):
    base = decoded_variants(text)
    if rule.get("category") in RAW_CATEGORIES:
        return base
    leet = "leet" in (rule.get("normalize") or ())
    out = list(base)
    for b in base:
        out.append(folded(b))
        if leet:
            out.append(folded(b, leet=True))
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------ checks
class Checker:
    def __init__(self, rules_dir, use_hs, verbose):
        self.rules_dir = rules_dir
        self.hs = load_hyperscan() if use_hs else None
        self.verbose = verbose
        self.errors = []
        self.rule_errors = {}
        self.ids = {}
        self.per_category = {}
        self.per_file = {}

    def err(self, where, msg, rule_id=None):
        self.errors.append("%s: %s" % (where, msg))
        if rule_id:
            self.rule_errors[rule_id] = self.rule_errors.get(rule_id, 0) + 1

    def accepts(self, rule, text, strict):
        v = rule.get("validator")
        if v and v != "entropy" and not formats.VALIDATORS[v](text, strict=strict):
            return False
        min_e = rule.get("min_entropy")
        if min_e is None and v == "entropy":
            min_e = DEFAULT_ENTROPY
        if min_e is not None and formats.shannon_entropy(text) < float(min_e):
            return False
        return True

    def run(self):
        files = sorted(glob.glob(os.path.join(self.rules_dir, "*.yaml")))
        if not files:
            self.err(self.rules_dir, "no rules/*.yaml files")
        for path in files:
            self.check_file(path)
        return not self.errors

    def check_file(self, path):
        rel = os.path.relpath(path, REPO)
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.load(f, Loader=LineLoader)
        except yaml.YAMLError as e:
            self.err(rel, "YAML error: %s" % e)
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            self.err(rel, "top level must be a mapping with a 'rules' list")
            return
        want_cat = None
        for rx, cat in FILE_CATEGORY:
            if rx.search(os.path.basename(path)):
                want_cat = cat
        self.per_file[rel] = len(doc["rules"])
        for rule in doc["rules"]:
            if not isinstance(rule, dict):
                self.err(rel, "rule is not a mapping")
                continue
            self.check_rule(rel, rule, want_cat)

    def check_rule(self, rel, rule, want_cat):
        where = "%s:%s" % (rel, rule.get("__line__", "?"))
        rid = rule.get("id")
        if isinstance(rid, str):
            where += " [%s]" % rid
        for key in REQUIRED:
            if key not in rule:
                self.err(where, "missing required key '%s'" % key, rid)
        for key in rule:
            if key != "__line__" and key not in REQUIRED and key not in OPTIONAL:
                self.err(where, "unknown key '%s'" % key, rid)
        if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rid):
            self.err(where, "id must match [a-z0-9-]+", rid)
            return
        if rid in self.ids:
            self.err(where, "duplicate id (first at %s)" % self.ids[rid], rid)
        self.ids[rid] = where
        self.rule_errors.setdefault(rid, 0)
        desc = rule.get("description")
        if not isinstance(desc, str) or not desc.strip() or "\n" in desc.strip():
            self.err(where, "description must be one non-empty line", rid)
        cat = rule.get("category")
        if cat not in CATEGORIES:
            self.err(where, "category %r not in %s" % (cat, sorted(CATEGORIES)), rid)
        elif want_cat and cat != want_cat:
            self.err(where, "category %s in a %s file" % (cat, want_cat), rid)
        self.per_category[cat] = self.per_category.get(cat, 0) + 1
        if rule.get("severity") not in SEVERITIES:
            self.err(where, "severity %r not in %s" % (rule.get("severity"), sorted(SEVERITIES)), rid)
        flags = rule.get("flags") or []
        if not isinstance(flags, list) or not set(flags) <= FLAGS:
            self.err(where, "flags must be a list from %s" % sorted(FLAGS), rid)
            flags = []
        v = rule.get("validator")
        if v is not None and v not in formats.VALIDATORS:
            self.err(where, "validator %r not in %s" % (v, sorted(formats.VALIDATORS)), rid)
            return
        me = rule.get("min_entropy")
        if me is not None and (not isinstance(me, (int, float)) or not 0 < me < 8):
            self.err(where, "min_entropy must be a number in (0, 8)", rid)
            return
        norm = rule.get("normalize")
        if norm is not None:
            if cat != "injection":
                self.err(where, "normalize is for injection rules only", rid)
            if not isinstance(norm, list) or not set(norm) <= NORMALIZERS:
                self.err(where, "normalize must be a list from %s" % sorted(NORMALIZERS), rid)
        pattern = rule.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            self.err(where, "pattern must be a non-empty string", rid)
            return
        for p in hyperscan_lint(pattern):
            self.err(where, "pattern: %s" % p, rid)
        try:
            pm = PyMatcher(pattern, flags)
        except re.error as e:
            self.err(where, "pattern does not compile in Python re: %s" % e, rid)
            return
        if pm.rx.fullmatch(""):
            self.err(where, "pattern matches the empty string", rid)
        self.check_examples(where, rule, rid, pm, flags)

    def check_examples(self, where, rule, rid, pm, flags):
        ex = rule.get("examples")
        if not isinstance(ex, dict):
            self.err(where, "examples must be a mapping with match/no_match", rid)
            return
        cat = rule.get("category")
        need = MIN_EXAMPLES.get(cat, 1)
        pos = ex.get("match") or []
        neg = ex.get("no_match") or []
        if not isinstance(pos, list) or not isinstance(neg, list):
            self.err(where, "examples.match and examples.no_match must be lists", rid)
            return
        if len(pos) < need or len(neg) < need:
            self.err(where, "needs >= %d match and >= %d no_match examples" % (need, need), rid)
        raw_only = cat in RAW_CATEGORIES
        for i, text in enumerate(pos):
            if not isinstance(text, str):
                self.err(where, "match[%d] is not a string" % i, rid)
                continue
            texts = [text] if raw_only else variants_for(rule, text)
            ok = any(self.accepts(rule, t[s:e], strict=True)
                     for t in texts for (s, e) in pm.greedy(t))
            if not ok:
                why = "pattern does not match" if not any(pm.greedy(t) for t in texts) \
                    else "validator/min_entropy rejects the match"
                self.err(where, "match[%d] gives no finding (%s): %r" % (i, why, text[:120]), rid)
        for i, text in enumerate(neg):
            if not isinstance(text, str):
                self.err(where, "no_match[%d] is not a string" % i, rid)
                continue
            for t in variants_for(rule, text):
                hit = next(((s, e) for (s, e) in pm.candidates(t)
                            if self.accepts(rule, t[s:e], strict=False)), None)
                if hit:
                    variant = "" if t == text else " (in a decoded/folded variant)"
                    self.err(where, "no_match[%d] gives a finding%s on %r" % (
                        i, variant, t[hit[0]:hit[1]][:80]), rid)
                    break
        if self.hs:
            self.check_hyperscan(where, rule, rid, flags, pos, neg)

    def check_hyperscan(self, where, rule, rid, flags, pos, neg):
        pattern = rule["pattern"]
        # Like the engine: start-of-match tracking when the pattern allows it,
        # else without (the engine then reports approximate start offsets).
        som = Hyperscan.SOM_LEFTMOST
        stream, msg = self.hs.compile(
            pattern, flags, Hyperscan.MODE_STREAM | Hyperscan.SOM_HORIZON_LARGE, som)
        if stream is None:
            stream, msg = self.hs.compile(pattern, flags, Hyperscan.MODE_STREAM)
        if stream is None:
            self.err(where, "Hyperscan (stream mode) rejects the pattern: %s" % msg[0], rid)
        else:
            self.hs.free(stream)
        db, msg = self.hs.compile(pattern, flags, Hyperscan.MODE_BLOCK, som)
        if db is None:
            db, msg = self.hs.compile(pattern, flags, Hyperscan.MODE_BLOCK)
        if db is None:
            self.err(where, "Hyperscan (block mode, SOM) rejects the pattern: %s" % msg[0], rid)
            return
        raw_only = rule.get("category") in RAW_CATEGORIES
        try:
            for i, text in enumerate(pos):
                if not isinstance(text, str):
                    continue
                texts = [text] if raw_only else variants_for(rule, text)
                ok = False
                for t in texts:
                    b = t.encode("utf-8")
                    for _i, s, e in self.hs.scan(db, b):
                        frag = b[s:e].decode("utf-8", "replace")
                        if self.accepts(rule, frag, strict=True):
                            ok = True
                            break
                    if ok:
                        break
                if not ok:
                    self.err(where, "Hyperscan: match[%d] gives no finding" % i, rid)
            for i, text in enumerate(neg):
                if not isinstance(text, str):
                    continue
                for t in variants_for(rule, text):
                    b = t.encode("utf-8")
                    hit = next((b[s:e] for _i, s, e in self.hs.scan(db, b)
                                if self.accepts(rule, b[s:e].decode("utf-8", "replace"),
                                                strict=False)), None)
                    if hit is not None:
                        self.err(where, "Hyperscan: no_match[%d] gives a finding on %r"
                                 % (i, hit[:80]), rid)
                        break
        finally:
            self.hs.free(db)


def check_recall(ck, gen_dir):
    """Every sample written by gen_credentials.py must give a finding of its rule."""
    import gen_credentials
    rules = {}
    for path in sorted(glob.glob(os.path.join(ck.rules_dir, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for r in (yaml.safe_load(f) or {}).get("rules") or []:
                if isinstance(r, dict) and "id" in r:
                    rules[r["id"]] = r
    problems, total, found = [], 0, 0
    for rid in sorted(gen_credentials.FORMATS):
        if rid not in rules:
            problems.append("generator format %s has no rule" % rid)
            continue
        path = os.path.join(gen_dir, rid + ".txt")
        if not os.path.exists(path):
            problems.append("no samples for %s in %s" % (rid, gen_dir))
            continue
        rule = rules[rid]
        pm = PyMatcher(rule["pattern"], rule.get("flags"))
        for s in gen_credentials.read_samples(path):
            total += 1
            if any(ck.accepts(rule, s[a:b], strict=True) for a, b in pm.greedy(s)):
                found += 1
            else:
                problems.append("%s: sample gives no finding: %r" % (rid, s[:100]))
    for rid, r in sorted(rules.items()):
        if r.get("category") in RAW_CATEGORIES and rid not in gen_credentials.FORMATS:
            problems.append("rule %s has no generator format" % rid)
    return problems, total, found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules-dir", default=os.path.join(REPO, "rules"))
    ap.add_argument("--no-hyperscan", action="store_true",
                    help="skip the libhs compile/scan cross-check")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--recall", metavar="DIR",
                    help="instead: check that every sample gen_credentials.py wrote to DIR "
                         "gives a finding of its rule (Python reference matcher)")
    args = ap.parse_args(argv)
    ck = Checker(args.rules_dir, not args.no_hyperscan, args.verbose)
    if args.recall:
        problems, total, found = check_recall(ck, args.recall)
        for p in problems:
            print("ERROR " + p)
        print("recall: %d of %d samples found" % (found, total))
        print("samples: %d passed, %d failed" % (found, total - found))
        return 0 if not problems else 1
    ck.run()
    for e in ck.errors:
        print("ERROR " + e)
    if args.verbose:
        for f, n in sorted(ck.per_file.items()):
            print("%-40s %4d rules" % (f, n))
    cats = ", ".join("%s %d" % (c, n) for c, n in sorted(ck.per_category.items(), key=str))
    print("categories: %s" % cats)
    print("hyperscan cross-check: %s" % ("on" if ck.hs else "off (libhs not found or disabled)"))
    failed = sum(1 for n in ck.rule_errors.values() if n)
    passed = len(ck.rule_errors) - failed
    print("rules: %d passed, %d failed" % (passed, failed))
    return 0 if not ck.errors else 1


if __name__ == "__main__":
    sys.exit(main())
