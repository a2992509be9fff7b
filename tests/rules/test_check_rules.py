"""Tests of the rule checker itself and of the reference validators (pytest)."""

import os
import random
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_rules  # noqa: E402
import formats  # noqa: E402
import gen_credentials  # noqa: E402


def run_checker(tmp_path, yaml_text, name="credentials-test.yaml"):
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(textwrap.dedent(yaml_text))
    p = subprocess.run([sys.executable, os.path.join(HERE, "check_rules.py"), "--rules-dir", str(d)],
                       capture_output=True, text=True)
    return p.returncode, p.stdout


GOOD = """
rules:
  - id: demo-token
    description: demo
    category: credential
    severity: high
    pattern: '\\bdemo_[a-f0-9]{8}\\b'
    examples:
      match: ['t=demo_0123abcd', 'x demo_ffffeeee y']
      no_match: ['demo_0123', 'demo_0123abcdef']
"""


def test_good_rule_passes(tmp_path):
    rc, out = run_checker(tmp_path, GOOD)
    assert rc == 0, out
    assert "1 passed, 0 failed" in out


def test_no_match_that_matches_fails(tmp_path):
    rc, out = run_checker(tmp_path, GOOD.replace("'demo_0123',", "'demo_01234567',"))
    assert rc == 1 and "no_match[0] gives a finding" in out


def test_match_that_misses_fails(tmp_path):
    rc, out = run_checker(tmp_path, GOOD.replace("t=demo_0123abcd", "t=demo_0123abcg"))
    assert rc == 1 and "match[0] gives no finding" in out


def test_lookahead_and_backref_rejected(tmp_path):
    rc, out = run_checker(tmp_path, GOOD.replace("{8}\\b'", "{8}(?=x)\\1'"))
    assert rc == 1 and "lookaround" in out and "backreference" in out


def test_schema_errors(tmp_path):
    bad = GOOD.replace("severity: high", "severity: urgent").replace(
        "category: credential", "category: credential\n    validator: md5")
    rc, out = run_checker(tmp_path, bad)
    assert rc == 1 and "severity" in out and "validator" in out


def test_duplicate_ids(tmp_path):
    rc, out = run_checker(tmp_path, GOOD + GOOD.split("rules:\n")[1])
    assert rc == 1 and "duplicate id" in out


def test_validator_applies(tmp_path):
    luhn = GOOD.replace("pattern: '\\bdemo_[a-f0-9]{8}\\b'", "pattern: '\\b[0-9]{16}\\b'\n    validator: luhn")
    luhn = luhn.replace("['t=demo_0123abcd', 'x demo_ffffeeee y']", "['4111111111111111', 'pan 5555555555554444']")
    luhn = luhn.replace("['demo_0123', 'demo_0123abcdef']", "['4111111111111112', '1234']")
    rc, out = run_checker(tmp_path, luhn)
    assert rc == 0, out
    rc, out = run_checker(tmp_path, luhn.replace("'4111111111111112'", "'4012888888881881'"))
    assert rc == 1


def test_hyperscan_lint_cases():
    lint = check_rules.hyperscan_lint
    assert lint(r"ab(?!c)") and lint(r"(?<=x)y") and lint(r"a++") and lint(r"(?>ab)")
    assert lint(r"\Kfoo") and lint(r"(a)\1")
    assert not lint(r"[(?=]x") and not lint(r"a+?b") and not lint(r"(?i:abc)\b")


def test_validators_known_vectors():
    assert formats.v_luhn("4111 1111 1111 1111") and not formats.v_luhn("4111 1111 1111 1112")
    assert formats.v_iban("GB82 WEST 1234 5698 7654 32") and not formats.v_iban("GB82 WEST 1234 5698 7654 33")
    assert formats.v_base58check("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ")
    assert formats.v_bip39(" ".join(["abandon"] * 11 + ["about"]))
    assert not formats.v_bip39(" ".join(["abandon"] * 12))
    assert formats.v_ssn("078-05-1120") and not formats.v_ssn("666-05-1120")
    assert not formats.v_ssn("900-05-1120") and not formats.v_ssn("123-00-1120")
    assert formats.v_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")
    assert not formats.v_jwt("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")  # no alg


def test_crc32_base62_roundtrip():
    rng = random.Random(7)
    make = gen_credentials.FORMATS["github-pat-classic"][0]
    tok = make(rng)
    assert formats.v_crc32_base62(tok)
    assert not formats.v_crc32_base62(tok[:-1] + ("0" if tok[-1] != "0" else "1"))


def test_generated_formats_validate():
    rng = random.Random(11)
    for rid, v in [("bitcoin-wif-private-key", formats.v_base58check),
                   ("bitcoin-extended-private-key", formats.v_base58check),
                   ("bip39-seed-phrase", formats.v_bip39), ("iban", formats.v_iban),
                   ("card-visa", formats.v_luhn), ("card-amex", formats.v_luhn),
                   ("jwt", formats.v_jwt), ("private-key-rsa", formats.v_pem),
                   ("pgp-private-key-block", formats.v_pem), ("npm-access-token", formats.v_crc32_base62)]:
        make = gen_credentials.FORMATS[rid][0]
        for _ in range(50):
            assert v(make(rng)), rid


def test_repo_rules_pass_checker_and_recall(tmp_path):
    """The committed rules satisfy the checker, and the generator's samples all hit.

    The seeds are fixed so CI is reproducible; sweep others by hand with
    `gen_credentials.py OUT --seed N` + `check_rules.py --recall OUT`, and
    turn any miss into a rule fix plus a `match` example."""
    p = subprocess.run([sys.executable, os.path.join(HERE, "check_rules.py")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:]
    for seed in (1, 2, 3):
        out = tmp_path / ("gen%d" % seed)
        subprocess.run([sys.executable, os.path.join(HERE, "gen_credentials.py"), str(out),
                        "-n", "20", "--seed", str(seed)], check=True, capture_output=True)
        p = subprocess.run([sys.executable, os.path.join(HERE, "check_rules.py"), "--recall", str(out)],
                           capture_output=True, text=True)
        assert p.returncode == 0, "seed %d: %s" % (seed, p.stdout[-3000:])
