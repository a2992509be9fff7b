"""Parse wrk's output: the WRKJSON line printed by wrk.lua's done() when
present, and wrk's own text (Requests/sec, the --latency "Latency
Distribution" block, socket errors, non-2xx responses) as cross-check and
fallback. Times are returned in microseconds."""

import json
import re

_UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}


def to_us(text):
    """'812.00us' / '1.23ms' / '2.00s' -> microseconds (float)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return round(float(m.group(1)) * _UNIT_US[m.group(2)], 3)


def parse_text(out):
    """Parse wrk's human output. Returns a dict with rps, requests, duration_s,
    latency_us {p50,p75,p90,p99}, errors {connect,read,write,timeout,status}."""
    r = {"errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    if not m:
        raise ValueError("wrk output has no Requests/sec line")
    r["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),", out, re.M)
    if m:
        r["requests"] = int(m.group(1))
        r["duration_s"] = to_us(m.group(2) + m.group(3)) / 1e6
    block = re.search(r"Latency Distribution\s*\n((?:\s+\d+%\s+\S+\s*\n)+)", out)
    lat = {}
    if block:
        for pm in re.finditer(r"(\d+)%\s+(\S+)", block.group(1)):
            lat[f"p{pm.group(1)}"] = to_us(pm.group(2))
    r["latency_us"] = lat
    m = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            r["errors"][k] = int(v)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"]["status"] = int(m.group(1))
    return r


def parse_json_line(out):
    """The WRKJSON line from wrk.lua's done(), or None."""
    for ln in out.splitlines():
        if ln.startswith("WRKJSON "):
            return json.loads(ln[len("WRKJSON ") :])
    return None


def parse(out):
    """Combined result: req/s and counts from the text, percentiles from the
    WRKJSON line when present (exact integers in us), else from the text
    block. Raises ValueError when the output is not a wrk result."""
    t = parse_text(out)
    j = parse_json_line(out)
    res = {
        "rps": t["rps"],
        "requests": t.get("requests"),
        "duration_s": t.get("duration_s"),
        "errors": dict(t["errors"]),
        "p50_us": t["latency_us"].get("p50"),
        "p99_us": t["latency_us"].get("p99"),
    }
    if j is not None:
        res["requests"] = j["requests"]
        res["duration_s"] = j["duration_us"] / 1e6
        res["rps"] = j["requests"] / res["duration_s"] if j["duration_us"] else 0.0
        res["p50_us"] = float(j["latency_us"]["p50"])
        res["p99_us"] = float(j["latency_us"]["p99"])
        res["p999_us"] = float(j["latency_us"]["p999"])
        res["max_us"] = float(j["latency_us"]["max"])
        res["bytes"] = j["bytes"]
        for k, v in j["errors"].items():
            res["errors"][k] = max(res["errors"].get(k, 0), v)
    if res["p50_us"] is None or res["p99_us"] is None:
        raise ValueError("wrk output has no latency percentiles (run wrk with --latency)")
    return res
