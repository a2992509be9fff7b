"""Tests of the wrk output parser (python3 -m pytest bench/proxy)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parse  # noqa: E402

TEXT = """Running 10s test @ http://127.0.0.1:40000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.80ms    1.10ms  21.31ms   80.12%
    Req/Sec    11.44k   612.00    12.31k    72.00%
  Latency Distribution
     50%    2.62ms
     75%    3.10ms
     90%    4.02ms
     99%    6.92ms
  113850 requests in 10.00s, 139.43MB read
  Socket errors: connect 0, read 12, write 3, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  11385.00
Transfer/sec:     13.94MB
"""

JSONLINE = (
    'WRKJSON {"requests": 113850, "duration_us": 10000000, "bytes": 146200000, '
    '"errors": {"connect": 0, "read": 12, "write": 3, "status": 7, "timeout": 1}, '
    '"latency_us": {"min": 90, "mean": 2800.00, "max": 21310, "p50": 2617, '
    '"p90": 4020, "p99": 6921, "p999": 9000}}\n'
)


def test_units():
    assert parse.to_us("812.00us") == 812.0
    assert parse.to_us("1.23ms") == 1230.0
    assert parse.to_us("2.00s") == 2_000_000.0
    with pytest.raises(ValueError):
        parse.to_us("12 parsecs")


def test_text_block():
    r = parse.parse_text(TEXT)
    assert r["rps"] == 11385.0
    assert r["requests"] == 113850
    assert r["duration_s"] == 10.0
    assert r["latency_us"] == {"p50": 2620.0, "p75": 3100.0, "p90": 4020.0, "p99": 6920.0}
    assert r["errors"] == {"connect": 0, "read": 12, "write": 3, "timeout": 1, "status": 7}


def test_text_only_fallback():
    r = parse.parse(TEXT)
    assert r["p50_us"] == 2620.0 and r["p99_us"] == 6920.0
    assert "p999_us" not in r


def test_json_line_wins_for_percentiles():
    r = parse.parse(TEXT + JSONLINE)
    assert r["p50_us"] == 2617.0 and r["p99_us"] == 6921.0 and r["p999_us"] == 9000.0
    assert r["requests"] == 113850
    assert r["rps"] == pytest.approx(11385.0)
    assert r["errors"]["status"] == 7


def test_no_latency_is_an_error():
    text = TEXT.split("  Latency Distribution")[0] + "Requests/sec:  1.00\n"
    with pytest.raises(ValueError):
        parse.parse(text)


def test_not_wrk_output():
    with pytest.raises(ValueError):
        parse.parse("unable to connect to 127.0.0.1:1 Connection refused\n")
