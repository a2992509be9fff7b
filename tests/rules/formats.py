"""Checksum and structure primitives shared by check_rules.py and gen_credentials.py.

These are Python re-implementations of the validators named in docs/rules-format
(the engine implements them in C). Each validator takes the matched text and
returns True when it accepts it. Where the contract leaves room for two
readings, a validator takes `strict`: strict=True is the narrowest reading
(used for examples that must match), strict=False the broadest (used for
examples that must not match), so the examples hold under either engine
reading.
"""

import base64
import binascii
import hashlib
import json
import math
import os
import re
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


# ---------------------------------------------------------------- entropy
def shannon_entropy(s):
    """Shannon entropy of s in bits per character (0.0 for the empty string)."""
    if not s:
        return 0.0
    counts = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# ---------------------------------------------------------------- luhn
def luhn_sum_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_check_digit(partial):
    """Digit to append to `partial` (a digit string) so the whole passes Luhn."""
    for d in "0123456789":
        if luhn_sum_ok(partial + d):
            return d
    raise AssertionError("unreachable")


def v_luhn(text, strict=True):
    # Contract: digits of the match, spaces and dashes ignored, 12..19 digits.
    stripped = text.replace(" ", "").replace("-", "")
    if not stripped.isdigit() or not stripped.isascii():
        return False
    if not 12 <= len(stripped) <= 19:
        return False
    return luhn_sum_ok(stripped)


# ---------------------------------------------------------------- iban
# ISO 13616 registry lengths per country.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16,
    "BG": 22, "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22,
    "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22,
    "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30,
    "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29,
    "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_mod97(iban):
    moved = iban[4:] + iban[:4]
    num = "".join(str(int(ch, 36)) for ch in moved)
    return int(num) % 97


def iban_check_digits(country, bban):
    """Two check digits making country+digits+bban a valid IBAN."""
    rem = iban_mod97(country + "00" + bban)
    return "%02d" % (98 - rem)


def v_iban(text, strict=True):
    s = text.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", s):
        return False
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    return iban_mod97(s) == 1


# ---------------------------------------------------------------- base58check
def b58encode(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = BASE58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(s):
    n = 0
    for ch in s:
        i = BASE58.find(ch)
        if i < 0:
            return None
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\0" * pad + body


def dsha256(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58check_encode(payload):
    return b58encode(payload + dsha256(payload)[:4])


# Version prefixes of private key encodings (WIF and BIP32/49/84 extended keys).
XPRV_VERSIONS = {
    bytes.fromhex("0488ade4"),  # xprv
    bytes.fromhex("04358394"),  # tprv
    bytes.fromhex("049d7878"),  # yprv
    bytes.fromhex("04b2430c"),  # zprv
    bytes.fromhex("044a4e28"),  # uprv
    bytes.fromhex("045f18bc"),  # vprv
}


def v_base58check(text, strict=True):
    raw = b58decode(text)
    if raw is None or len(raw) < 5:
        return False
    payload, check = raw[:-4], raw[-4:]
    if dsha256(payload)[:4] != check:
        return False
    if not strict:
        return True
    # Strict reading: also a private-key shape (WIF or extended private key).
    if payload[:1] in (b"\x80", b"\xef"):
        return len(payload) == 33 or (len(payload) == 34 and payload[-1] == 1)
    if payload[:4] in XPRV_VERSIONS:
        return len(payload) == 78 and payload[45] == 0
    return False


# ---------------------------------------------------------------- crc32-base62
def base62_fixed(n, width):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
    return out.rjust(width, "0")


def crc32_base62(random_part):
    """GitHub/npm token checksum: CRC32 of the random part, base62, 6 chars."""
    return base62_fixed(zlib.crc32(random_part.encode()) & 0xFFFFFFFF, 6)


def v_crc32_base62(text, strict=True):
    # The token body is what follows the last '_' (ghp_, npm_, github_pat_..).
    body = text.rsplit("_", 1)[-1]
    if len(body) != 36 or not re.fullmatch(r"[A-Za-z0-9]{36}", body):
        return False
    return crc32_base62(body[:30]) == body[30:]


# ---------------------------------------------------------------- jwt
def b64url_decode(part):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        return None
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None


def _json_object(raw):
    if raw is None:
        return None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def v_jwt(text, strict=True):
    parts = text.split(".")
    if len(parts) != 3:
        return False
    header = _json_object(b64url_decode(parts[0]))
    if header is None or "alg" not in header:
        return False
    if b64url_decode(parts[2]) is None:
        return False
    if strict:
        # Strict reading also wants a JSON payload and a non-empty signature.
        return _json_object(b64url_decode(parts[1])) is not None and parts[2] != ""
    return b64url_decode(parts[1]) is not None


# ---------------------------------------------------------------- ssn
def v_ssn(text, strict=True):
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


# ---------------------------------------------------------------- pem
_PEM_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----(.*)-----END ([A-Z0-9 ]+)-----", re.S
)


def v_pem(text, strict=True):
    """BEGIN/END labels agree and the body is base64.

    The body may start with RFC 1421 / OpenPGP armor headers ("Name: value"
    lines, e.g. Proc-Type, DEK-Info, Version) and may end with an OpenPGP
    CRC-24 line ("=XXXX"); neither is part of the base64 body.
    """
    m = _PEM_RE.fullmatch(text.strip())
    if not m or m.group(1) != m.group(3):
        return False
    lines = [ln.strip() for ln in m.group(2).replace("\r", "").split("\n")]
    lines = [ln for ln in lines if ln != ""]
    while lines and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*: ?.*", lines[0]):
        lines.pop(0)
    if lines and re.fullmatch(r"=[A-Za-z0-9+/]{4}", lines[-1]):
        lines.pop()
    body = "".join(lines)
    if len(body) < 64 or len(body) % 4 != 0:
        return False
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", body):
        return False
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# ---------------------------------------------------------------- bip39
_WORDS = None


def bip39_words():
    global _WORDS
    if _WORDS is None:
        with open(os.path.join(HERE, "bip39-english.txt"), encoding="ascii") as f:
            _WORDS = [w.strip() for w in f if w.strip()]
        assert len(_WORDS) == 2048
    return _WORDS


def bip39_phrase_ok(words):
    wl = bip39_words()
    index = {w: i for i, w in enumerate(wl)}
    if len(words) not in (12, 15, 18, 21, 24):
        return False
    if any(w not in index for w in words):
        return False
    bits = "".join(format(index[w], "011b") for w in words)
    cs_len = len(words) // 3
    ent_bits, cs = bits[:-cs_len], bits[-cs_len:]
    ent = int(ent_bits, 2).to_bytes(len(ent_bits) // 8, "big")
    digest = hashlib.sha256(ent).digest()
    return format(digest[0], "08b")[:cs_len] == cs


def bip39_from_entropy(ent):
    wl = bip39_words()
    cs_len = len(ent) * 8 // 32
    bits = "".join(format(b, "08b") for b in ent)
    bits += format(hashlib.sha256(ent).digest()[0], "08b")[:cs_len]
    return " ".join(wl[int(bits[i:i + 11], 2)] for i in range(0, len(bits), 11))


def v_bip39(text, strict=True):
    words = text.split()
    if strict:
        return bip39_phrase_ok(words)
    # Broad reading: any run of 12/15/18/21/24 consecutive words inside the match.
    for n in (12, 15, 18, 21, 24):
        for i in range(0, len(words) - n + 1):
            if bip39_phrase_ok(words[i:i + n]):
                return True
    return False


VALIDATORS = {
    "luhn": v_luhn,
    "iban": v_iban,
    "bip39": v_bip39,
    "base58check": v_base58check,
    "crc32-base62": v_crc32_base62,
    "jwt": v_jwt,
    "ssn": v_ssn,
    "pem": v_pem,
    "entropy": lambda text, strict=True: True,  # handled as min_entropy 3.5
}
