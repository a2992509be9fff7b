#!/usr/bin/python3
"""Generate fresh, random, valid-format credentials for every credential and
financial rule, to measure recall of the engine (it must be 100%).

Usage: tests/rules/gen_credentials.py OUTDIR [-n 20] [--seed S] [--list]

Writes OUTDIR/<rule-id>.txt with N samples, each a small realistic context
(an env assignment, a header, a JSON member, a whole PEM block, ...) holding
one credential. Samples may span lines, so each is followed by a separator
line '-----8<-----'; read_samples() splits a file back into samples.

The formats below are written from each vendor's documented token layout
(prefix, length, alphabet, checksum), NOT derived from the rule patterns, so
running the rules over this output is an independent check of the patterns.
None of these values is a real secret.
"""

import argparse
import base64
import json
import os
import random
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import formats  # noqa: E402

UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LO = "abcdefghijklmnopqrstuvwxyz"
DIG = "0123456789"
AN = UP + LO + DIG
ALPHA = UP + LO
HEX = "0123456789abcdef"
B64 = AN + "+/"
B64URL = AN + "-_"
B32 = UP + "234567"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
SEP = "-----8<-----"


def rs(rng, charset, n):
    return "".join(rng.choice(charset) for _ in range(n))


def rb(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def mixed(rng, charset, n):
    """A random token over charset with at least one lowercase letter and one digit
    (what the generic high-entropy rules define as a secret-looking value)."""
    chars = [rng.choice(charset) for _ in range(n)]
    i, j = rng.sample(range(n), 2)
    chars[i] = rng.choice(LO)
    chars[j] = rng.choice(DIG)
    return "".join(chars)


def b64(data):
    return base64.b64encode(data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def ruuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def wrap(s, width):
    return "\n".join(s[i:i + width] for i in range(0, len(s), width))


# --------------------------------------------------------------- token makers
def aws_key_id(rng):
    # 4-char type prefix + 16 chars of base32 (A-Z, 2-7).
    return rng.choice(["AKIA", "ASIA", "ABIA", "ACCA"]) + rs(rng, B32, 16)


def github(prefix):
    def make(rng):
        body = rs(rng, AN, 30)
        return prefix + body + formats.crc32_base62(body)
    return make


def openai(kind):
    def make(rng):
        n = rng.choice([58, 74])
        return "sk-%s-%sT3BlbkFJ%s" % (kind, rs(rng, B64URL, n), rs(rng, B64URL, n))
    return make


def fixed(prefix, charset, n, suffix=""):
    def make(rng):
        return prefix + rs(rng, charset, n) + suffix
    return make


def anthropic(kind):
    return lambda rng: "sk-ant-%s-%sAA" % (kind, rs(rng, B64URL, 93))


def pem(label, nbytes, headers=None, leading="MII"):
    def make(rng):
        body = b64(rb(rng, nbytes))
        body = leading + body[len(leading):] if leading else body
        out = "-----BEGIN %s-----\n" % label
        if headers:
            out += headers(rng) + "\n\n"
        return out + wrap(body, 64) + "\n-----END %s-----" % label
    return make


def openssh_key(rng):
    body = b64(b"openssh-key-v1\0" + rb(rng, 380))
    return ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + wrap(body, 70)
            + "\n-----END OPENSSH PRIVATE KEY-----")


def pgp_key(rng):
    body = b64(rb(rng, 900))
    crc = b64(rb(rng, 3))
    return ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + wrap(body, 64)
            + "\n=" + crc + "\n-----END PGP PRIVATE KEY BLOCK-----")


def ssh2_key(rng):
    body = b64(rb(rng, 600))
    return ("---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"rsa-key-%d\"\n"
            % rng.randint(20200101, 20291231) + wrap(body, 70)
            + "\n---- END SSH2 ENCRYPTED PRIVATE KEY ----")


def putty_key(rng):
    alg = rng.choice(["ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256"])
    pub = b64(rb(rng, 51))
    priv = b64(rb(rng, 48))
    ver = rng.choice(["2", "3"])
    out = "PuTTY-User-Key-File-%s: %s\nEncryption: none\nComment: %s-key-%d\n" % (
        ver, alg, alg.split("-")[0], rng.randint(20200101, 20291231))
    out += "Public-Lines: 2\n%s\n%s\n" % (pub[:64], pub[64:])
    out += "Private-Lines: 1\n%s\n" % priv
    out += "Private-MAC: %s" % rs(rng, HEX, 64)
    return out


def escaped_pem(rng):
    label = rng.choice(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"])
    body = b64(rb(rng, 600))
    return ("-----BEGIN %s-----\\n" % label + wrap(body, 64).replace("\n", "\\n")
            + "\\n-----END %s-----\\n" % label)


def gcp_service_account(rng):
    project = "%s-%s-%d" % (rng.choice(["acme", "prod", "data", "ml"]),
                            rng.choice(["api", "etl", "web"]), rng.randint(100000, 999999))
    key = ("-----BEGIN PRIVATE KEY-----\n" + wrap("MIIEv" + b64(rb(rng, 900))[5:], 64)
           + "\n-----END PRIVATE KEY-----\n")
    doc = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": rs(rng, HEX, 40),
        "private_key": key,
        "client_email": "svc-%s@%s.iam.gserviceaccount.com" % (rs(rng, LO, 6), project),
        "client_id": rs(rng, DIG, 21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(doc, indent=2)


def jwt(rng):
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    payload = {"sub": ruuid(rng), "iat": rng.randint(1600000000, 1800000000),
               "role": rng.choice(["service_role", "admin", "user"])}
    sig = b64url(rb(rng, rng.choice([32, 64, 256])))
    return "%s.%s.%s" % (b64url(json.dumps(header).encode()),
                         b64url(json.dumps(payload).encode()), sig)


def jwk_private(rng):
    kty = rng.choice(["RSA", "EC", "OKP"])
    if kty == "RSA":
        k = {"kty": "RSA", "n": b64url(rb(rng, 256)), "e": "AQAB", "d": b64url(rb(rng, 256)),
             "p": b64url(rb(rng, 128)), "q": b64url(rb(rng, 128))}
    elif kty == "EC":
        k = {"kty": "EC", "crv": "P-256", "x": b64url(rb(rng, 32)), "y": b64url(rb(rng, 32)),
             "d": b64url(rb(rng, 32))}
    else:
        k = {"kty": "OKP", "crv": "Ed25519", "x": b64url(rb(rng, 32)), "d": b64url(rb(rng, 32))}
    k["kid"] = rs(rng, AN, 12)
    items = list(k.items())
    rng.shuffle(items)
    return json.dumps(dict(items))


def jwk_oct(rng):
    return json.dumps({"kty": "oct", "kid": rs(rng, AN, 8), "alg": "HS256",
                       "k": b64url(rb(rng, 32))})


def slack_bot(rng):
    return "xoxb-%s-%s-%s" % (rs(rng, DIG, rng.choice([11, 12, 13])),
                              rs(rng, DIG, rng.choice([12, 13])), rs(rng, AN, 24))


def slack_user(rng):
    return "xoxp-%s-%s-%s-%s" % (rs(rng, DIG, 12), rs(rng, DIG, 12), rs(rng, DIG, 13),
                                 rs(rng, HEX, 32))


def slack_app(rng):
    return "xapp-1-A%s-%s-%s" % (rs(rng, UP + DIG, 10), rs(rng, DIG, 13), rs(rng, HEX, 64))


def slack_legacy(rng):
    kind = rng.choice(["xoxa-2", "xoxr", "xoxs"])
    return "%s-%s-%s-%s-%s" % (kind, rs(rng, DIG, 12), rs(rng, DIG, 12), rs(rng, DIG, 13),
                               rs(rng, HEX, 64))


def slack_webhook(rng):
    return "https://hooks.slack.com/services/T%s/B%s/%s" % (
        rs(rng, UP + DIG, 10), rs(rng, UP + DIG, 10), rs(rng, AN, 24))


def slack_workflow(rng):
    return "https://hooks.slack.com/%s/T%s/A%s/%s/%s" % (
        rng.choice(["workflows", "triggers"]), rs(rng, UP + DIG, 10),
        rs(rng, UP + DIG, 10), rs(rng, DIG, 18), rs(rng, HEX, 32))


def discord_bot(rng):
    uid = str(rng.randint(10 ** 17, 10 ** 19 - 1)).encode()
    first = base64.b64encode(uid).decode().rstrip("=")
    return "%s.%s.%s" % (first, rs(rng, B64URL, 6), rs(rng, B64URL, rng.choice([27, 38])))


def discord_webhook(rng):
    return "https://%sdiscord.com/api/webhooks/%d/%s" % (
        rng.choice(["", "ptb.", "canary."]), rng.randint(10 ** 17, 10 ** 19 - 1),
        rs(rng, B64URL, 68))


def telegram(rng):
    return "%d:AA%s" % (rng.randint(10 ** 8, 10 ** 10 - 1), rs(rng, B64URL, 33))


def azure_sas(rng):
    sv = "20%02d-%02d-%02d" % (rng.randint(15, 25), rng.randint(1, 12), rng.randint(1, 28))
    sig = b64(rb(rng, 32)).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    acct = rs(rng, LO + DIG, 12)
    return ("https://%s.blob.core.windows.net/backups/db.bak?sv=%s&ss=b&srt=sco&sp=rl"
            "&se=2030-01-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig=%s" % (acct, sv, sig))


def azure_conn(rng):
    return ("DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;"
            "EndpointSuffix=core.windows.net" % (rs(rng, LO + DIG, 12), b64(rb(rng, 64))))


def azure_client_secret(rng):
    return rs(rng, AN + "_~.", 3) + rs(rng, DIG, 1) + "Q~" + rs(rng, AN + "_~.-", 34)


def twilio_pair(rng):
    return "AC%s:%s" % (rs(rng, HEX, 32), rs(rng, HEX, 32))


def sendgrid(rng):
    return "SG.%s.%s" % (rs(rng, B64URL, 22), rs(rng, B64URL, 43))


def braintree(rng):
    return "access_token$production$%s$%s" % (rs(rng, LO + DIG, 16), rs(rng, HEX, 32))


def sentry_org(rng):
    payload = {"iat": rng.randint(1600000000, 1800000000), "url": "https://sentry.io",
               "region_url": "https://us.sentry.io", "org": rs(rng, LO, 8)}
    return "sntrys_%s_%s" % (b64(json.dumps(payload).encode()).rstrip("="), rs(rng, B64URL, 43))


def sentry_dsn(rng):
    return "https://%s@o%d.ingest.%ssentry.io/%d" % (
        rs(rng, HEX, 32), rng.randint(100000, 9999999), rng.choice(["", "us.", "de."]),
        rng.randint(1000000, 9999999))


def teams_webhook(rng):
    return ("https://%s.webhook.office.com/webhookb2/%s@%s/IncomingWebhook/%s/%s"
            % (rs(rng, LO, 8), ruuid(rng), ruuid(rng), rs(rng, HEX, 32), ruuid(rng)))


def fcm_key(rng):
    return "AAAA%s:APA91b%s" % (rs(rng, B64URL, 7), rs(rng, B64URL, 134))


def onepassword(rng):
    payload = {"signInAddress": "my.1password.com", "userAuth": {"method": "SRPg-4096",
               "alg": "PBES2g-HS256", "iterations": 650000, "salt": rs(rng, B64URL, 22)},
               "email": "%s@%s.1passwordserviceaccounts.com" % (rs(rng, LO + DIG, 13),
                                                               rs(rng, LO + DIG, 13)),
               "srpX": rs(rng, HEX, 64), "muk": {"alg": "A256GCM", "ext": True,
                                                 "k": rs(rng, B64URL, 43)}}
    return "ops_" + b64(json.dumps(payload).encode()).rstrip("=")


def grafana_cloud(rng):
    payload = {"o": str(rng.randint(100000, 999999)), "n": "stack-%d-key" % rng.randint(1, 99999),
               "k": rs(rng, AN, 24), "m": {"r": "prod-us-east-0"}}
    return "glc_" + b64(json.dumps(payload).encode())


def gcp_refresh(rng):
    return "1//0" + rs(rng, AN, 1) + rs(rng, B64URL, 98)


def ghr_long(rng):
    return "ghr_" + rs(rng, AN, 76)


def bedrock(rng):
    inner = "BedrockAPIKey-%s-at-%s:%s" % (rs(rng, LO + DIG, 4), rs(rng, DIG, 12),
                                            b64(rb(rng, 40)))
    return "ABSK" + b64(inner.encode())


def jfrog_ref(rng):
    inner = "reftkn:01:%d:%s" % (rng.randint(1700000000, 2000000000), rs(rng, AN, 32))
    return b64(inner.encode()).rstrip("=")


def aws_session(rng):
    return "IQoJb3JpZ2luX2Vj" + b64(rb(rng, rng.randint(300, 600)))


def tfc(rng):
    return "%s.atlasv1.%s" % (rs(rng, AN, 14), rs(rng, AN, 67))


def glcbt(rng):
    return "glcbt-%s_%s" % (rs(rng, HEX, rng.randint(1, 5)), rs(rng, B64URL, 20))


def circleci(kind):
    return lambda rng: "CCI%s_%s_%s" % (kind, rs(rng, AN, 22), rs(rng, HEX, 40))


def airtable(rng):
    return "pat%s.%s" % (rs(rng, AN, 14), rs(rng, HEX, 64))


def asana(rng):
    return "2/%s/%s:%s" % (rs(rng, DIG, 16), rs(rng, DIG, 16), rs(rng, HEX, 32))


def tailscale(rng):
    return "tskey-%s-k%s-%s" % (rng.choice(["auth", "api", "client"]), rs(rng, AN, 11),
                                rs(rng, AN, 33))


def hubspot(rng):
    return "pat-%s1-%s" % (rng.choice(["na", "eu"]), ruuid(rng))


def twitter_bearer(rng):
    return "A" * 22 + rs(rng, AN + "%", 90)


def mapbox(rng):
    payload = b64url(json.dumps({"u": rs(rng, LO, 8), "a": rs(rng, LO + DIG, 25)}).encode())
    return "sk.%s.%s" % (payload, rs(rng, B64URL, 22))


def dynatrace(rng):
    return "dt0c01.%s.%s" % (rs(rng, UP + DIG, 24), rs(rng, UP + DIG, 64))


def postman(rng):
    return "PMAK-%s-%s" % (rs(rng, HEX, 24), rs(rng, HEX, 34))


def grafana_sa(rng):
    return "glsa_%s_%s" % (rs(rng, AN, 32), rs(rng, HEX, 8))


def typeform(rng):
    return "tfp_%s_%s" % (rs(rng, B64URL, 44), rs(rng, B64URL, 14))


def cloudinary(rng):
    return "cloudinary://%s:%s@%s" % (rs(rng, DIG, 15), rs(rng, B64URL, 27), rs(rng, LO, 8))


def planetscale(rng):
    return "pscale_%s_%s" % (rng.choice(["tkn", "pw", "oauth"]), rs(rng, B64URL, 43))


def langsmith(rng):
    return "lsv2_%s_%s_%s" % (rng.choice(["pt", "sk"]), rs(rng, HEX, 32), rs(rng, HEX, 10))


def mailgun_new(rng):
    return "%s-%s-%s" % (rs(rng, HEX, 32), rs(rng, HEX, 8), rs(rng, HEX, 8))


def cf_origin(rng):
    return "v1.0-%s-%s" % (rs(rng, HEX, 24), rs(rng, HEX, 146))


def password(rng):
    # A realistic strong password: letters, digits and a few URL-safe symbols.
    return mixed(rng, AN, rng.randint(10, 16)) + rs(rng, "!-_.~", 1) + rs(rng, AN, 3)


def db_url(schemes):
    def make(rng):
        user = rng.choice(["app", "svc_orders", "admin", "etl", "grafana"])
        host = rng.choice(["db.internal", "10.0.3.17", "prod-cluster.abc123.eu-west-1.rds.amazonaws.com",
                           "cache-01.corp.example.net", "mq.prod.svc.cluster.local"])
        return "%s://%s:%s@%s" % (rng.choice(schemes), user, password(rng), host)
    return make


def mongodb_url(rng):
    return "mongodb+srv://%s:%s@cluster0.%s.mongodb.net/?retryWrites=true" % (
        rng.choice(["app", "root", "reporting"]), password(rng), rs(rng, LO + DIG, 5))


def redis_url(rng):
    if rng.random() < 0.5:
        return "redis://:%s@cache.internal:6379/0" % password(rng)
    return "rediss://default:%s@redis-12345.c1.cloud.redislabs.com:12345" % password(rng)


def ado_conn(rng):
    return "Server=tcp:sql-%s.database.windows.net,1433;Database=orders;User ID=app;Password=%s;Encrypt=True" % (
        rs(rng, LO, 6), password(rng))


def kube_key(rng):
    inner = pem("RSA PRIVATE KEY", 1190)(rng) + "\n"
    return b64(inner.encode())


def age_key(rng):
    return "AGE-SECRET-KEY-1" + rs(rng, BECH32, 58).upper()


# Financial / identity
CARD_BRANDS = {
    "card-visa": ([["4"]], [16, 16, 16, 19]),
    "card-mastercard": ([["51", "52", "53", "54", "55"], [str(x) for x in range(2221, 2721)]], [16]),
    "card-amex": ([["34", "37"]], [15]),
    "card-discover": ([["6011", "65"] + [str(x) for x in range(644, 650)]], [16]),
    "card-jcb": ([[str(x) for x in range(3528, 3590)]], [16]),
    "card-diners": ([["36", "38", "39"] + [str(x) for x in range(300, 306)]], [14]),
    "card-unionpay": ([["62"]], [16, 19]),
}


def card(rule_id):
    groups, lengths = CARD_BRANDS[rule_id]

    def make(rng):
        prefix = rng.choice(rng.choice(groups))
        n = rng.choice(lengths)
        partial = prefix + rs(rng, DIG, n - 1 - len(prefix))
        num = partial + formats.luhn_check_digit(partial)
        sep = rng.choice(["", " ", "-"])
        if n == 15:
            parts = [num[:4], num[4:10], num[10:]]
        elif n == 14:
            parts = [num[:4], num[4:10], num[10:]]
        else:
            parts = [num[i:i + 4] for i in range(0, n, 4)]
        return sep.join(parts)
    return make


def iban(rng):
    country, bban = rng.choice([
        ("DE", lambda: rs(rng, DIG, 18)),
        ("GB", lambda: rs(rng, UP, 4) + rs(rng, DIG, 14)),
        ("FR", lambda: rs(rng, DIG, 10) + rs(rng, UP + DIG, 11) + rs(rng, DIG, 2)),
        ("NL", lambda: rs(rng, UP, 4) + rs(rng, DIG, 10)),
        ("ES", lambda: rs(rng, DIG, 20)),
        ("IT", lambda: rs(rng, UP, 1) + rs(rng, DIG, 10) + rs(rng, UP + DIG, 12)),
        ("CH", lambda: rs(rng, DIG, 5) + rs(rng, UP + DIG, 12)),
        ("BE", lambda: rs(rng, DIG, 12)),
    ])
    b = bban()
    s = country + formats.iban_check_digits(country, b) + b
    if rng.random() < 0.5:
        s = " ".join(s[i:i + 4] for i in range(0, len(s), 4))
    return s


def bip39(rng):
    return formats.bip39_from_entropy(rb(rng, rng.choice([16, 20, 24, 28, 32])))


def wif(rng):
    key = rb(rng, 32)
    if rng.random() < 0.5:
        return formats.b58check_encode(b"\x80" + key)
    return formats.b58check_encode(b"\x80" + key + b"\x01")


def xprv(rng):
    version = rng.choice([bytes.fromhex("0488ade4"), bytes.fromhex("04358394"),
                          bytes.fromhex("04b2430c")])
    payload = (version + bytes([rng.randint(0, 5)]) + rb(rng, 4) + rb(rng, 4) + rb(rng, 32)
               + b"\x00" + rb(rng, 32))
    return formats.b58check_encode(payload)


def ssn(rng):
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return "%03d-%02d-%04d" % (area, rng.randint(1, 99), rng.randint(1, 9999))


# --------------------------------------------------------------- the formats
# rule id -> (token maker, context templates). "{}" is replaced by the token.
ENV = ["export {name}={}", "{name}=\"{}\"", "{{\"{lname}\": \"{}\"}}"]


def ctx(*names):
    """Context templates for a credential that is only recognisable by its name."""
    out = []
    for n in names:
        out += [t.replace("{name}", n).replace("{lname}", n.lower()) for t in ENV]
    return out


PLAIN = ["token: {}", "Authorization: Bearer {}", "{{\"api_key\": \"{}\"}}", "export API_TOKEN={}"]
URLCTX = ["webhook_url = \"{}\"", "curl -X POST {} -d @payload.json", "{}"]
BLOCK = ["{}", "key = '''\n{}\n'''", "<pre>\n{}\n</pre>"]

FORMATS = {
    # ---- cloud
    "aws-access-key-id": (aws_key_id, ["aws_access_key_id = {}", "AWS_ACCESS_KEY_ID={}",
                                       "{{\"AccessKeyId\": \"{}\"}}"]),
    "aws-secret-access-key": (lambda r: rs(r, AN + "+/", 40),
                              ["aws_secret_access_key = {}", "AWS_SECRET_ACCESS_KEY={}",
                               "{{\"SecretAccessKey\": \"{}\"}}", "aws_secret_key: \"{}\""]),
    "aws-session-token": (aws_session, ["aws_session_token = {}", "AWS_SESSION_TOKEN={}",
                                        "X-Amz-Security-Token: {}"]),
    "aws-mws-auth-token": (lambda r: "amzn.mws." + ruuid(r), ["MWSAuthToken={}", "mws_token: {}"]),
    "aws-bedrock-api-key": (bedrock, ["AWS_BEARER_TOKEN_BEDROCK={}", "Authorization: Bearer {}"]),
    "gcp-service-account-key": (gcp_service_account, ["{}"]),
    "gcp-api-key": (fixed("AIza", B64URL, 35), ["https://maps.googleapis.com/maps/api/geocode/json?key={}",
                                                "GOOGLE_API_KEY={}", "apiKey: \"{}\""]),
    "google-ai-api-key": (fixed("AIza", B64URL, 35), ["GEMINI_API_KEY={}", "x-goog-api-key: {}",
                                                      "GOOGLE_GENERATIVE_AI_API_KEY=\"{}\""]),
    "google-oauth-client-secret": (fixed("GOCSPX-", B64URL, 28), ["\"client_secret\": \"{}\"",
                                                                  "GOOGLE_CLIENT_SECRET={}"]),
    "google-oauth-refresh-token": (gcp_refresh, ["\"refresh_token\": \"{}\"", "refresh_token={}"]),
    "google-oauth-access-token": (fixed("ya29.", B64URL, 150), ["Authorization: Bearer {}",
                                                                "\"access_token\": \"{}\""]),
    "azure-storage-account-key": (azure_conn, ["AZURE_STORAGE_CONNECTION_STRING=\"{}\"", "{}"]),
    "azure-storage-key-context": (lambda r: b64(rb(r, 64)),
                                  ctx("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY")),
    "azure-sas-token": (azure_sas, ["{}", "SAS_URL=\"{}\""]),
    "azure-ad-client-secret": (azure_client_secret, ["AZURE_CLIENT_SECRET={}", "\"clientSecret\": \"{}\""]),
    "azure-devops-pat-context": (lambda r: rs(r, "abcdefghijklmnopqrstuvwxyz234567", 52),
                                 ctx("AZURE_DEVOPS_EXT_PAT", "AZURE_DEVOPS_PAT", "AZDO_PERSONAL_ACCESS_TOKEN")),
    "alibaba-access-key-id": (fixed("LTAI", AN, 20), ["ALIBABA_CLOUD_ACCESS_KEY_ID={}",
                                                      "accessKeyId: {}"]),
    "tencent-cloud-secret-id": (fixed("AKID", AN, 32), ["TENCENTCLOUD_SECRET_ID={}", "SecretId: {}"]),
    "digitalocean-pat": (fixed("dop_v1_", HEX, 64), ["DIGITALOCEAN_TOKEN={}", "Authorization: Bearer {}"]),
    "digitalocean-oauth-token": (fixed("doo_v1_", HEX, 64), ["Authorization: Bearer {}", "token: {}"]),
    "digitalocean-refresh-token": (fixed("dor_v1_", HEX, 64), ["\"refresh_token\": \"{}\"",
                                                               "refresh_token={}"]),
    "cloudflare-api-token-context": (lambda r: rs(r, B64URL, 40),
                                     ctx("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN")),
    "cloudflare-global-api-key-context": (lambda r: rs(r, HEX, 37),
                                          ctx("CLOUDFLARE_API_KEY", "CF_API_KEY") + ["X-Auth-Key: {}"]),
    "cloudflare-origin-ca-key": (cf_origin, ["CF_ORIGIN_CA_KEY={}", "X-Auth-User-Service-Key: {}"]),
    "heroku-api-key": (fixed("HRKU-AA", B64URL, 58), ["HEROKU_API_KEY={}", "Authorization: Bearer {}"]),
    "heroku-api-key-context": (ruuid, ctx("HEROKU_API_KEY", "HEROKU_AUTH_TOKEN")),
    "vault-service-token": (lambda r: "hvs.CAESI" + rs(r, B64URL, 86), ["VAULT_TOKEN={}",
                                                                        "X-Vault-Token: {}"]),
    "vault-batch-token": (lambda r: "hvb.AAAAAQ" + rs(r, B64URL, 150), ["VAULT_TOKEN={}",
                                                                        "X-Vault-Token: {}"]),
    "vault-token-context": (lambda r: "s." + rs(r, AN, 24), ctx("VAULT_TOKEN") + ["X-Vault-Token: {}"]),
    "terraform-cloud-token": (tfc, ["TF_TOKEN_app_terraform_io={}",
                                    "credentials \"app.terraform.io\" {{ token = \"{}\" }}"]),
    "pulumi-access-token": (fixed("pul-", HEX, 40), ["PULUMI_ACCESS_TOKEN={}", "token: {}"]),
    "databricks-token": (fixed("dapi", HEX, 32), ["DATABRICKS_TOKEN={}", "Authorization: Bearer {}"]),
    # ---- AI providers
    "anthropic-api-key": (anthropic("api03"), ["ANTHROPIC_API_KEY={}", "x-api-key: {}",
                                                "{{\"api_key\": \"{}\"}}"]),
    "anthropic-admin-key": (anthropic("admin01"), ["ANTHROPIC_ADMIN_KEY={}", "x-api-key: {}"]),
    "anthropic-oauth-token": (lambda r: "sk-ant-%s01-%sAA" % (r.choice(["oat", "ort"]),
                                                              rs(r, B64URL, 93)),
                              ["CLAUDE_CODE_OAUTH_TOKEN={}", "Authorization: Bearer {}"]),
    "openai-project-key": (openai("proj"), ["OPENAI_API_KEY={}", "Authorization: Bearer {}"]),
    "openai-service-account-key": (openai("svcacct"), ["OPENAI_API_KEY={}",
                                                       "Authorization: Bearer {}"]),
    "openai-admin-key": (openai("admin"), ["OPENAI_ADMIN_KEY={}", "Authorization: Bearer {}"]),
    "openai-legacy-key": (lambda r: "sk-%s%sT3BlbkFJ%s" % (r.choice(["", "proj-", "None-"]),
                                                           rs(r, AN, 20), rs(r, AN, 20)),
                          ["OPENAI_API_KEY={}", "openai.api_key = \"{}\""]),
    "huggingface-token": (fixed("hf_", ALPHA, 34), ["HF_TOKEN={}", "Authorization: Bearer {}"]),
    "huggingface-org-token": (fixed("api_org_", ALPHA, 34), ["HUGGING_FACE_HUB_TOKEN={}",
                                                             "Authorization: Bearer {}"]),
    "groq-api-key": (fixed("gsk_", AN, 52), ["GROQ_API_KEY={}", "Authorization: Bearer {}"]),
    "mistral-api-key-context": (lambda r: rs(r, AN, 32), ctx("MISTRAL_API_KEY")),
    "cohere-api-key-context": (lambda r: rs(r, AN, 40), ctx("COHERE_API_KEY", "CO_API_KEY")),
    "replicate-api-token": (fixed("r8_", AN, 37), ["REPLICATE_API_TOKEN={}",
                                                   "Authorization: Token {}"]),
    "together-api-key": (fixed("tgp_v1_", B64URL, 43), ["TOGETHER_API_KEY={}",
                                                        "Authorization: Bearer {}"]),
    "together-api-key-context": (lambda r: rs(r, HEX, 64), ctx("TOGETHER_API_KEY", "TOGETHERAI_API_KEY")),
    "fireworks-api-key": (fixed("fw_", AN, 24), ["FIREWORKS_API_KEY={}", "Authorization: Bearer {}"]),
    "xai-api-key": (fixed("xai-", AN, 80), ["XAI_API_KEY={}", "Authorization: Bearer {}"]),
    "perplexity-api-key": (fixed("pplx-", AN, 48), ["PERPLEXITY_API_KEY={}",
                                                    "Authorization: Bearer {}"]),
    "deepseek-api-key-context": (fixed("sk-", HEX, 32), ctx("DEEPSEEK_API_KEY")),
    "openrouter-api-key": (fixed("sk-or-v1-", HEX, 64), ["OPENROUTER_API_KEY={}",
                                                         "Authorization: Bearer {}"]),
    "langsmith-api-key": (langsmith, ["LANGSMITH_API_KEY={}", "x-api-key: {}"]),
    "nvidia-api-key": (fixed("nvapi-", B64URL, 64), ["NVIDIA_API_KEY={}", "Authorization: Bearer {}"]),
    "wandb-api-key-context": (lambda r: rs(r, HEX, 40), ctx("WANDB_API_KEY")),
    "azure-openai-key-context": (lambda r: rs(r, HEX, 32), ctx("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_KEY")),
    "elevenlabs-api-key-context": (fixed("sk_", HEX, 48), ctx("ELEVENLABS_API_KEY", "XI_API_KEY")
                                   + ["xi-api-key: {}"]),
    "pinecone-api-key": (lambda r: "pcsk_%s_%s" % (rs(r, AN, 6), rs(r, AN, 63)),
                         ["PINECONE_API_KEY={}", "Api-Key: {}"]),
    # ---- source control, registries, CI
    "github-pat-classic": (github("ghp_"), PLAIN + ["https://x-access-token:{}@github.com/o/r.git"]),
    "github-oauth-token": (github("gho_"), PLAIN),
    "github-user-to-server-token": (github("ghu_"), PLAIN),
    "github-server-to-server-token": (github("ghs_"), PLAIN),
    "github-refresh-token": (github("ghr_"), ["\"refresh_token\": \"{}\"", "refresh_token={}"]),
    "github-refresh-token-long": (ghr_long, ["\"refresh_token\": \"{}\"", "refresh_token={}"]),
    "github-fine-grained-pat": (lambda r: "github_pat_11%s_%s" % (rs(r, UP + DIG, 20), rs(r, AN, 59)),
                                PLAIN),
    "gitlab-pat": (fixed("glpat-", B64URL, 20), ["GITLAB_TOKEN={}", "PRIVATE-TOKEN: {}"]),
    "gitlab-deploy-token": (fixed("gldt-", B64URL, 20), ["CI_DEPLOY_PASSWORD={}", "password: {}"]),
    "gitlab-runner-token": (fixed("glrt-", B64URL, 20), ["token = \"{}\"", "RUNNER_TOKEN={}"]),
    "gitlab-pipeline-trigger-token": (fixed("glptt-", HEX, 40), ["TRIGGER_TOKEN={}", "-F token={}"]),
    "gitlab-runner-registration-token": (fixed("GR1348941", B64URL, 20),
                                         ["REGISTRATION_TOKEN={}", "--registration-token {}"]),
    "gitlab-ci-build-token": (glcbt, ["CI_JOB_TOKEN={}", "JOB-TOKEN: {}"]),
    "gitlab-agent-token": (fixed("glagent-", B64URL, 50), ["token: {}", "AGENT_TOKEN={}"]),
    "gitlab-oauth-app-secret": (fixed("gloas-", HEX, 64), ["client_secret: {}", "GITLAB_APP_SECRET={}"]),
    "gitlab-scim-token": (fixed("glsoat-", B64URL, 20), ["Authorization: Bearer {}", "SCIM_TOKEN={}"]),
    "gitlab-feed-token": (fixed("glft-", B64URL, 20), ["https://gitlab.com/dashboard/issues.atom?feed_token={}",
                                                       "feed_token: {}"]),
    "gitlab-incoming-mail-token": (fixed("glimt-", B64URL, 25), ["incoming+group-project-{}-issue@gitlab.example.com",
                                                                 "token: {}"]),
    "gitlab-feature-flag-token": (fixed("glffct-", B64URL, 20), ["UNLEASH_INSTANCE_ID={}",
                                                                 "instanceId: {}"]),
    "bitbucket-app-password": (fixed("ATBB", AN, 32), ["BITBUCKET_APP_PASSWORD={}",
                                                       "password: {}"]),
    "bitbucket-client-secret-context": (lambda r: rs(r, AN, 32),
                                        ctx("BITBUCKET_CLIENT_SECRET", "BITBUCKET_OAUTH_SECRET")),
    "npm-access-token": (github("npm_"), ["//registry.npmjs.org/:_authToken={}", "NPM_TOKEN={}"]),
    "npmrc-auth-token": (ruuid, ["//registry.npmjs.org/:_authToken={}",
                                 "//npm.pkg.github.com/:_authToken={}"]),
    "pypi-upload-token": (lambda r: "pypi-AgEIcHlwaS5vcmc" + rs(r, B64URL, 140),
                          ["password = {}", "TWINE_PASSWORD={}"]),
    "testpypi-upload-token": (lambda r: "pypi-AgENdGVzdC5weXBpLm9yZw" + rs(r, B64URL, 140),
                              ["password = {}", "TWINE_PASSWORD={}"]),
    "docker-hub-pat": (fixed("dckr_pat_", B64URL, 27), ["DOCKERHUB_TOKEN={}",
                                                        "docker login -u ci -p {}"]),
    "docker-hub-org-token": (fixed("dckr_oat_", B64URL, 32), ["DOCKERHUB_TOKEN={}",
                                                              "docker login -u acme -p {}"]),
    "circleci-personal-token": (circleci("PAT"), ["CIRCLE_TOKEN={}", "Circle-Token: {}"]),
    "circleci-project-token": (circleci("PRJ"), ["CIRCLE_TOKEN={}", "Circle-Token: {}"]),
    "circleci-token-context": (lambda r: rs(r, HEX, 40), ctx("CIRCLE_TOKEN", "CIRCLECI_TOKEN")
                               + ["Circle-Token: {}"]),
    "buildkite-user-token": (fixed("bkua_", HEX, 40), ["BUILDKITE_API_TOKEN={}",
                                                       "Authorization: Bearer {}"]),
    "sonarqube-token": (lambda r: "sq%s_%s" % (r.choice("upa"), rs(r, HEX, 40)),
                        ["SONAR_TOKEN={}", "-Dsonar.token={}"]),
    "jfrog-api-key": (fixed("AKCp8", AN, 68), ["X-JFrog-Art-Api: {}", "ARTIFACTORY_API_KEY={}"]),
    "jfrog-reference-token": (jfrog_ref, ["JFROG_ACCESS_TOKEN={}", "Authorization: Bearer {}"]),
    "rubygems-api-key": (fixed("rubygems_", HEX, 48), ["GEM_HOST_API_KEY={}", ":rubygems_api_key: {}"]),
    "nuget-api-key": (fixed("oy2", LO + DIG, 43), ["NUGET_API_KEY={}",
                                                   "dotnet nuget push pkg.nupkg -k {}"]),
    "crates-io-token": (fixed("cio", AN, 32), ["CARGO_REGISTRY_TOKEN={}", "token = \"{}\""]),
    "clojars-token": (fixed("CLOJARS_", LO + DIG, 60), ["CLOJARS_PASSWORD={}", ":password \"{}\""]),
    "codecov-token-context": (ruuid, ctx("CODECOV_TOKEN")),
    "snyk-token-context": (ruuid, ctx("SNYK_TOKEN")),
    # ---- payments
    "stripe-secret-key-live": (lambda r: "sk_live_51" + rs(r, AN, 97),
                               ["STRIPE_SECRET_KEY={}", "stripe.api_key = \"{}\"",
                                "Authorization: Bearer {}"]),
    "stripe-restricted-key-live": (lambda r: "rk_live_51" + rs(r, AN, 97),
                                   ["STRIPE_RESTRICTED_KEY={}", "Authorization: Bearer {}"]),
    "stripe-webhook-secret": (lambda r: "whsec_" + rs(r, AN, 32), ["STRIPE_WEBHOOK_SECRET={}",
                                                                   "endpoint_secret = \"{}\""]),
    "square-access-token": (fixed("EAAA", B64URL, 60), ["SQUARE_ACCESS_TOKEN={}",
                                                        "Authorization: Bearer {}"]),
    "square-legacy-access-token": (fixed("sq0atp-", B64URL, 22), ["SQUARE_ACCESS_TOKEN={}",
                                                                  "Authorization: Bearer {}"]),
    "square-oauth-secret": (fixed("sq0csp-", B64URL, 43), ["SQUARE_APP_SECRET={}",
                                                           "\"client_secret\": \"{}\""]),
    "braintree-access-token": (braintree, ["BRAINTREE_ACCESS_TOKEN={}", "accessToken: \"{}\""]),
    "paypal-client-secret-context": (lambda r: "E" + rs(r, B64URL, 79),
                                     ctx("PAYPAL_CLIENT_SECRET", "PAYPAL_SECRET")),
    "flutterwave-secret-key": (lambda r: "FLWSECK-%s-X" % rs(r, HEX, 32),
                               ["FLW_SECRET_KEY={}", "Authorization: Bearer {}"]),
    "plaid-access-token": (lambda r: "access-production-" + ruuid(r),
                           ["\"access_token\": \"{}\"", "PLAID_ACCESS_TOKEN={}"]),
    "shippo-live-token": (fixed("shippo_live_", HEX, 40), ["Authorization: ShippoToken {}",
                                                           "SHIPPO_API_KEY={}"]),
    "easypost-api-key": (fixed("EZAK", AN, 54), ["EASYPOST_API_KEY={}", "api_key: {}"]),
    "duffel-live-token": (fixed("duffel_live_", B64URL, 43), ["DUFFEL_ACCESS_TOKEN={}",
                                                              "Authorization: Bearer {}"]),
    # ---- messaging and SaaS
    "slack-bot-token": (slack_bot, PLAIN + ["SLACK_BOT_TOKEN={}"]),
    "slack-user-token": (slack_user, PLAIN + ["SLACK_USER_TOKEN={}"]),
    "slack-app-token": (slack_app, ["SLACK_APP_TOKEN={}", "Authorization: Bearer {}"]),
    "slack-config-token": (lambda r: "xoxe.xox%s-1-%s" % (r.choice("bp"), rs(r, AN, 163)),
                           ["SLACK_CONFIG_TOKEN={}", "Authorization: Bearer {}"]),
    "slack-refresh-token": (lambda r: "xoxe-1-" + rs(r, AN, 146),
                            ["SLACK_REFRESH_TOKEN={}", "\"refresh_token\": \"{}\""]),
    "slack-legacy-token": (slack_legacy, ["SLACK_TOKEN={}", "token={}"]),
    "slack-webhook-url": (slack_webhook, URLCTX),
    "slack-workflow-webhook-url": (slack_workflow, URLCTX),
    "discord-bot-token": (discord_bot, ["DISCORD_TOKEN={}", "Authorization: Bot {}"]),
    "discord-webhook-url": (discord_webhook, URLCTX),
    "telegram-bot-token": (telegram, ["TELEGRAM_BOT_TOKEN={}", "https://api.telegram.org/bot{}/sendMessage"]),
    "twilio-api-key": (fixed("SK", HEX, 32), ["TWILIO_API_KEY={}", "api_key_sid: {}"]),
    "twilio-auth-token-context": (lambda r: rs(r, HEX, 32), ctx("TWILIO_AUTH_TOKEN")),
    "twilio-account-credentials": (twilio_pair, ["curl -u {} https://api.twilio.com/2010-04-01/Accounts.json",
                                                 "https://{}@api.twilio.com/"]),
    "sendgrid-api-key": (sendgrid, ["SENDGRID_API_KEY={}", "Authorization: Bearer {}"]),
    "brevo-api-key": (lambda r: "xkeysib-%s-%s" % (rs(r, HEX, 64), rs(r, AN, 16)),
                      ["BREVO_API_KEY={}", "api-key: {}"]),
    "mailgun-api-key": (fixed("key-", HEX, 32), ["MAILGUN_API_KEY={}", "curl -s --user 'api:{}'"]),
    "mailgun-private-key-context": (mailgun_new, ctx("MAILGUN_API_KEY", "MAILGUN_PRIVATE_KEY")),
    "mailchimp-api-key": (lambda r: "%s-us%d" % (rs(r, HEX, 32), r.randint(1, 21)),
                          ["MAILCHIMP_API_KEY={}", "apikey: {}"]),
    "notion-integration-secret": (fixed("secret_", AN, 43), ["NOTION_TOKEN={}",
                                                             "Authorization: Bearer {}"]),
    "notion-token": (lambda r: "ntn_%s%s" % (rs(r, DIG, 11), rs(r, AN, 35)),
                     ["NOTION_TOKEN={}", "Authorization: Bearer {}"]),
    "linear-api-key": (fixed("lin_api_", AN, 40), ["LINEAR_API_KEY={}", "Authorization: {}"]),
    "linear-oauth-token": (fixed("lin_oauth_", HEX, 64), ["Authorization: Bearer {}",
                                                          "\"access_token\": \"{}\""]),
    "atlassian-api-token": (lambda r: "ATATT3xFfGF0" + rs(r, B64URL, 172) + "=" + rs(r, HEX.upper(), 8),
                            ["JIRA_API_TOKEN={}", "curl -u me@example.com:{} https://x.atlassian.net"]),
    "shopify-access-token": (fixed("shpat_", HEX, 32), ["X-Shopify-Access-Token: {}",
                                                        "SHOPIFY_ACCESS_TOKEN={}"]),
    "shopify-shared-secret": (fixed("shpss_", HEX, 32), ["SHOPIFY_API_SECRET={}", "secret: {}"]),
    "shopify-custom-app-token": (fixed("shpca_", HEX, 32), ["X-Shopify-Access-Token: {}",
                                                            "SHOPIFY_TOKEN={}"]),
    "shopify-private-app-token": (fixed("shppa_", HEX, 32), ["X-Shopify-Access-Token: {}",
                                                             "SHOPIFY_PASSWORD={}"]),
    "datadog-api-key-context": (lambda r: rs(r, HEX, 32), ctx("DD_API_KEY", "DATADOG_API_KEY")
                                + ["DD-API-KEY: {}"]),
    "datadog-app-key-context": (lambda r: rs(r, HEX, 40), ctx("DD_APP_KEY", "DATADOG_APP_KEY")
                                + ["DD-APPLICATION-KEY: {}"]),
    "newrelic-user-api-key": (fixed("NRAK-", UP + DIG, 27), ["NEW_RELIC_API_KEY={}", "Api-Key: {}"]),
    "newrelic-insert-key": (fixed("NRII-", B64URL, 32), ["NEW_RELIC_INSERT_KEY={}", "X-Insert-Key: {}"]),
    "newrelic-license-key": (lambda r: rs(r, HEX, 36) + "NRAL", ["NEW_RELIC_LICENSE_KEY={}",
                                                                 "license_key: {}"]),
    "newrelic-browser-key": (fixed("NRJS-", HEX, 19), ["licenseKey: \"{}\"", "NEW_RELIC_BROWSER_KEY={}"]),
    "sentry-org-token": (sentry_org, ["SENTRY_AUTH_TOKEN={}", "Authorization: Bearer {}"]),
    "sentry-user-token": (fixed("sntryu_", HEX, 64), ["SENTRY_AUTH_TOKEN={}", "Authorization: Bearer {}"]),
    "sentry-dsn": (sentry_dsn, ["SENTRY_DSN={}", "Sentry.init({{ dsn: \"{}\" }})"]),
    "pagerduty-api-key-context": (lambda r: "u+" + rs(r, B64URL, 18),
                                  ctx("PAGERDUTY_API_KEY", "PAGERDUTY_TOKEN", "PD_API_KEY")
                                  + ["Authorization: Token token={}"]),
    "okta-api-token-context": (lambda r: "00" + rs(r, B64URL, 40), ctx("OKTA_API_TOKEN", "OKTA_TOKEN")
                               + ["Authorization: SSWS {}"]),
    "vercel-token-context": (lambda r: rs(r, AN, 24), ctx("VERCEL_TOKEN", "VERCEL_API_TOKEN")),
    "netlify-pat": (fixed("nfp_", AN, 36), ["NETLIFY_AUTH_TOKEN={}", "Authorization: Bearer {}"]),
    "netlify-token-context": (lambda r: rs(r, B64URL, 43), ctx("NETLIFY_AUTH_TOKEN", "NETLIFY_TOKEN")),
    "supabase-access-token": (fixed("sbp_", HEX, 40), ["SUPABASE_ACCESS_TOKEN={}",
                                                       "Authorization: Bearer {}"]),
    "supabase-secret-key": (lambda r: "sb_secret_" + rs(r, B64URL, 31), ["SUPABASE_SECRET_KEY={}",
                                                                         "apikey: {}"]),
    "mapbox-secret-token": (mapbox, ["MAPBOX_ACCESS_TOKEN={}", "mapboxgl.accessToken = '{}'"]),
    "airtable-pat": (airtable, ["AIRTABLE_API_KEY={}", "Authorization: Bearer {}"]),
    "asana-pat": (asana, ["ASANA_ACCESS_TOKEN={}", "Authorization: Bearer {}"]),
    "dropbox-access-token": (lambda r: "sl." + r.choice(["", "u."]) + rs(r, B64URL, 136),
                             ["DROPBOX_ACCESS_TOKEN={}", "Authorization: Bearer {}"]),
    "figma-pat": (lambda r: "figd_" + rs(r, B64URL, 40), ["FIGMA_TOKEN={}", "X-Figma-Token: {}"]),
    "contentful-pat": (fixed("CFPAT-", B64URL, 43), ["CONTENTFUL_MANAGEMENT_TOKEN={}",
                                                     "Authorization: Bearer {}"]),
    "prefect-api-key": (fixed("pnu_", AN, 36), ["PREFECT_API_KEY={}", "Authorization: Bearer {}"]),
    "onepassword-service-account-token": (onepassword, ["OP_SERVICE_ACCOUNT_TOKEN={}",
                                                        "export OP_SERVICE_ACCOUNT_TOKEN=\"{}\""]),
    "tailscale-key": (tailscale, ["TS_AUTHKEY={}", "tailscale up --authkey={}"]),
    "hubspot-pat": (hubspot, ["HUBSPOT_ACCESS_TOKEN={}", "Authorization: Bearer {}"]),
    "twitter-bearer-token": (twitter_bearer, ["TWITTER_BEARER_TOKEN={}", "Authorization: Bearer {}"]),
    "microsoft-teams-webhook-url": (teams_webhook, URLCTX),
    "planetscale-token": (planetscale, ["PLANETSCALE_SERVICE_TOKEN={}", "password: {}"]),
    "dynatrace-token": (dynatrace, ["DT_API_TOKEN={}", "Authorization: Api-Token {}"]),
    "firebase-cloud-messaging-key": (fcm_key, ["Authorization: key={}", "FCM_SERVER_KEY={}"]),
    "postman-api-key": (postman, ["POSTMAN_API_KEY={}", "X-Api-Key: {}"]),
    "grafana-cloud-token": (grafana_cloud, ["GRAFANA_CLOUD_TOKEN={}", "Authorization: Bearer {}"]),
    "grafana-service-account-token": (grafana_sa, ["GRAFANA_TOKEN={}", "Authorization: Bearer {}"]),
    "readme-api-key": (fixed("rdme_", LO + DIG, 70), ["README_API_KEY={}", "Authorization: Basic {}"]),
    "doppler-token": (lambda r: "dp.%s.%s" % (r.choice(["pt", "st", "sa", "ct", "scim", "audit"]),
                                              rs(r, AN, 43)), ["DOPPLER_TOKEN={}", "Authorization: Bearer {}"]),
    "typeform-pat": (typeform, ["TYPEFORM_TOKEN={}", "Authorization: Bearer {}"]),
    "cloudinary-url": (cloudinary, ["CLOUDINARY_URL={}", "url: {}"]),
    "algolia-admin-key-context": (lambda r: rs(r, HEX, 32), ctx("ALGOLIA_ADMIN_KEY", "ALGOLIA_ADMIN_API_KEY")),
    # ---- key material and connection strings
    "private-key-rsa": (lambda r: r.choice([
        pem("RSA PRIVATE KEY", 1190),
        pem("RSA PRIVATE KEY", 1190, leading="", headers=lambda r2: (
            "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC," + rs(r2, HEX.upper(), 32)))])(r),
        BLOCK),
    "private-key-ec": (pem("EC PRIVATE KEY", 121, leading="MHcCAQEE"), BLOCK),
    "private-key-dsa": (pem("DSA PRIVATE KEY", 440, leading="MIIBu"), BLOCK),
    "private-key-openssh": (openssh_key, BLOCK),
    "private-key-pkcs8": (pem("PRIVATE KEY", 1216, leading="MIIE"), BLOCK),
    "private-key-pkcs8-encrypted": (pem("ENCRYPTED PRIVATE KEY", 1298, leading="MIIF"), BLOCK),
    "pgp-private-key-block": (pgp_key, BLOCK),
    "ssh2-encrypted-private-key": (ssh2_key, BLOCK),
    "putty-private-key": (putty_key, BLOCK),
    "private-key-json-escaped": (escaped_pem, ["{{\"private_key\": \"{}\"}}", "PRIVATE_KEY=\"{}\""]),
    "kubeconfig-client-key-data": (kube_key, ["    client-key-data: {}"]),
    "age-secret-key": (age_key, ["{}", "# created: 2024-05-01\n# public key: age1...\n{}"]),
    "jwt": (jwt, ["Authorization: Bearer {}", "{{\"id_token\": \"{}\"}}",
                  "https://app.example.com/callback#access_token={}"]),
    "jwk-private-key": (jwk_private, ["{{\"keys\": [{}]}}", "{}"]),
    "jwk-symmetric-key": (jwk_oct, ["{{\"keys\": [{}]}}", "{}"]),
    "postgres-url-with-password": (db_url(["postgres", "postgresql"]), ["DATABASE_URL={}",
                                                                        "dsn: \"{}/orders\""]),
    "mysql-url-with-password": (db_url(["mysql", "mariadb", "mysql+pymysql"]),
                                ["DATABASE_URL={}", "SQLALCHEMY_DATABASE_URI = \"{}/app\""]),
    "mongodb-url-with-password": (mongodb_url, ["MONGODB_URI={}", "mongo_url: \"{}\""]),
    "redis-url-with-password": (redis_url, ["REDIS_URL={}", "CELERY_BROKER_URL=\"{}\""]),
    "amqp-url-with-password": (db_url(["amqp", "amqps"]), ["CELERY_BROKER_URL={}", "url: \"{}/vhost\""]),
    "connection-string-password": (ado_conn, ["ConnectionStrings__Default=\"{}\"",
                                              "\"DefaultConnection\": \"{}\""]),
    "env-secret-assignment": (lambda r: mixed(r, AN, r.randint(24, 48)),
                              ["SECRET_KEY={}", "APP_SECRET=\"{}\"", "export API_KEY={}",
                               "STRIPE_TOKEN={}", "DB_PASSWORD='{}'", "JWT_SECRET: {}"]),
    "authorization-bearer-generic": (lambda r: mixed(r, B64URL, r.randint(32, 64)),
                                     ["Authorization: Bearer {}", "authorization: bearer {}"]),
    "authorization-basic": (lambda r: b64(("%s:%s" % (r.choice(["deploy", "admin", "ci"]),
                                                      password(r))).encode()),
                            ["Authorization: Basic {}", "authorization: basic {}"]),
    # ---- financial and identity
    "card-visa": (card("card-visa"), ["card_number: {}", "{{\"pan\": \"{}\"}}", "Card {} exp 09/29"]),
    "card-mastercard": (card("card-mastercard"), ["card_number: {}", "{{\"pan\": \"{}\"}}"]),
    "card-amex": (card("card-amex"), ["card_number: {}", "{{\"pan\": \"{}\"}}"]),
    "card-discover": (card("card-discover"), ["card_number: {}", "{{\"pan\": \"{}\"}}"]),
    "card-jcb": (card("card-jcb"), ["card_number: {}", "{{\"pan\": \"{}\"}}"]),
    "card-diners": (card("card-diners"), ["card_number: {}", "{{\"pan\": \"{}\"}}"]),
    "card-unionpay": (card("card-unionpay"), ["card_number: {}", "{{\"pan\": \"{}\"}}"]),
    "iban": (iban, ["IBAN: {}", "{{\"iban\": \"{}\"}}", "Please wire to {} by Friday."]),
    "bip39-seed-phrase": (bip39, ["Recovery phrase: {}", "{{\"mnemonic\": \"{}\"}}", "{}"]),
    "bitcoin-wif-private-key": (wif, ["WIF: {}", "importprivkey {}", "{{\"privkey\": \"{}\"}}"]),
    "bitcoin-extended-private-key": (xprv, ["xprv: {}", "{{\"master\": \"{}\"}}", "{}"]),
    "ethereum-private-key": (lambda r: r.choice(["0x", ""]) + rs(r, HEX, 64),
                             ["PRIVATE_KEY={}", "private key: {}", "{{\"privateKey\": \"{}\"}}",
                              "ETH_PRIVATE_KEY=\"{}\""]),
    "us-ssn": (ssn, ["SSN: {}", "Social Security Number: {}", "{{\"ssn\": \"{}\"}}"]),
}


def samples(rule_id, n, rng):
    make, contexts = FORMATS[rule_id]
    out = []
    for i in range(n):
        tok = make(rng)
        tmpl = contexts[i % len(contexts)]
        out.append(tmpl.replace("{}", "\0").replace("{{", "{").replace("}}", "}")
                   .replace("\0", tok))
    return out


def write_samples(path, items):
    with open(path, "w", encoding="utf-8") as f:
        for s in items:
            f.write(s + "\n" + SEP + "\n")


def read_samples(path):
    """The samples of one file written by this script (a list of strings)."""
    with open(path, encoding="utf-8") as f:
        data = f.read()
    return [s.strip("\n") for s in data.split(SEP + "\n") if s.strip("\n")]


def main(argv=None):
    ap = argparse.ArgumentParser(description="generate valid-format credentials per rule")
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("-n", type=int, default=20, help="samples per rule (default 20)")
    ap.add_argument("--seed", type=int, default=None, help="RNG seed (default: random)")
    ap.add_argument("--list", action="store_true", help="list the rule ids and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(sorted(FORMATS)))
        return 0
    if not args.outdir:
        ap.error("outdir is required")
    rng = random.Random(args.seed)
    os.makedirs(args.outdir, exist_ok=True)
    for rid in sorted(FORMATS):
        write_samples(os.path.join(args.outdir, rid + ".txt"), samples(rid, args.n, rng))
    print("wrote %d rules x %d samples to %s" % (len(FORMATS), args.n, args.outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
