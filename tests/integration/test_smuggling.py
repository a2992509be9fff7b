"""Request smuggling and malformed requests: each must get 400, close the connection,
and never reach the upstream.

Head-level vectors are decidable from the head alone, so the upstream must not
receive a single byte. Chunk-level vectors are only visible in the body, which
a streaming proxy may already have started forwarding; for those the upstream
must never see a complete request (and nothing smuggled after it).
"""

import time

import pytest

from helpers import Closed, RawConn
from upstream import pattern_bytes

T = "http://upstream.test/info"
SMUGGLED = b"GET http://upstream.test/smuggled HTTP/1.1\r\nHost: upstream.test\r\n\r\n"


def raw(method="POST", target=T, headers=(), body=b"", version="HTTP/1.1", host=True):
    start = b"%s %s %s\r\n" % (method if isinstance(method, bytes) else method.encode(),
                               target if isinstance(target, bytes) else target.encode(),
                               version if isinstance(version, bytes) else version.encode())
    h = b"Host: upstream.test\r\n" if host else b""
    for k, v in headers:
        k = k if isinstance(k, bytes) else k.encode("latin-1")
        v = v if isinstance(v, bytes) else v.encode("latin-1")
        h += k + b": " + v + b"\r\n"
    return start + h + b"\r\n" + body


def chunked(body):
    return raw(headers=[("Transfer-Encoding", "chunked")], body=body)


HEAD_VECTORS = {
    # framing conflicts
    "cl_and_te": raw(headers=[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                     body=b"0\r\n\r\n" + SMUGGLED),
    "te_and_cl": raw(headers=[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                     body=b"0\r\n\r\n" + SMUGGLED),
    "cl_duplicate_same": raw(headers=[("Content-Length", "5"), ("Content-Length", "5")], body=b"hello"),
    "cl_duplicate_differ": raw(headers=[("Content-Length", "5"), ("Content-Length", "6")], body=b"hello!"),
    "cl_list_conflict": raw(headers=[("Content-Length", "5, 6")], body=b"hello!"),
    "cl_list_same": raw(headers=[("Content-Length", "5, 5")], body=b"hello"),
    "cl_negative": raw(headers=[("Content-Length", "-1")], body=b"hello"),
    "cl_plus": raw(headers=[("Content-Length", "+5")], body=b"hello"),
    "cl_nondigit": raw(headers=[("Content-Length", "5a")], body=b"hello"),
    "cl_hex": raw(headers=[("Content-Length", "0x5")], body=b"hello"),
    "cl_huge": raw(headers=[("Content-Length", "99999999999999999999999999")], body=b"hello"),
    "cl_empty": raw(headers=[("Content-Length", "")], body=b"hello"),
    "te_gzip": raw(headers=[("Transfer-Encoding", "gzip")], body=b"hello"),
    "te_chunked_gzip": raw(headers=[("Transfer-Encoding", "chunked, gzip")], body=b"0\r\n\r\n"),
    "te_identity": raw(headers=[("Transfer-Encoding", "identity")], body=b"0\r\n\r\n"),
    "te_xchunked": raw(headers=[("Transfer-Encoding", "xchunked")], body=b"0\r\n\r\n"),
    "te_chunked_twice_list": raw(headers=[("Transfer-Encoding", "chunked, chunked")], body=b"0\r\n\r\n"),
    "te_chunked_twice_headers": raw(headers=[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
                                    body=b"0\r\n\r\n"),
    "te_space_before_colon": b"POST " + T.encode() + b" HTTP/1.1\r\nHost: upstream.test\r\n"
                             b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te_vertical_tab": raw(headers=[("Transfer-Encoding", b"\x0bchunked")], body=b"0\r\n\r\n"),
    # folding, bare CR, NUL
    "obs_fold": raw(method="GET", headers=[("X-Folded", b"a\r\n b")]),
    "obs_fold_te": raw(headers=[("Transfer-Encoding", b"identity\r\n chunked")], body=b"0\r\n\r\n"),
    "leading_ws_first_header": b"GET " + T.encode() + b" HTTP/1.1\r\n X-Ws: a\r\nHost: upstream.test\r\n\r\n",
    "bare_cr_in_value": raw(method="GET", headers=[("X-Cr", b"a\rb")]),
    "bare_cr_line_end": b"GET " + T.encode() + b" HTTP/1.1\r\nHost: upstream.test\rX-A: b\r\n\r\n",
    "bare_cr_request_line": b"GET " + T.encode() + b" HTTP/1.1\rHost: upstream.test\r\n\r\n",
    "nul_in_value": raw(method="GET", headers=[("X-Nul", b"a\x00b")]),
    "nul_in_name": raw(method="GET", headers=[(b"X-N\x00ul", "a")]),
    "nul_in_target": raw(method="GET", target=b"http://upstream.test/a\x00b"),
    # request line
    "invalid_method_paren": raw(method=b"G(ET", host=True),
    "invalid_method_slash": raw(method=b"GE/T"),
    "empty_method": b" " + T.encode() + b" HTTP/1.1\r\nHost: upstream.test\r\n\r\n",
    "origin_form_target": raw(method="GET", target="/x"),
    "asterisk_target": raw(method="GET", target="*"),
    "target_with_space": raw(method="GET", target="http://upstream.test/a b"),
    "target_non_ascii": raw(method="GET", target="http://upstream.test/\xc3\xa9".encode("latin-1")),
    "target_ctl": raw(method="GET", target=b"http://upstream.test/a\x01b"),
    "target_empty_host": raw(method="GET", target="http:///x"),
    "target_bad_port": raw(method="GET", target="http://upstream.test:99999/"),
    "target_nonnumeric_port": raw(method="GET", target="http://upstream.test:8a/"),
    "authority_form_for_get": raw(method="GET", target="upstream.test:80"),
    "connect_without_port": raw(method="CONNECT", target="upstream.test"),
    "connect_bad_port": raw(method="CONNECT", target="upstream.test:abc"),
    "connect_absolute_form": raw(method="CONNECT", target="http://upstream.test/"),
    "double_space_request_line": b"GET  " + T.encode() + b" HTTP/1.1\r\nHost: upstream.test\r\n\r\n",
    "bad_version": raw(method="GET", version="HTTP/1.x"),
    "lowercase_version": raw(method="GET", version="http/1.1"),
    "missing_version": b"GET " + T.encode() + b"\r\nHost: upstream.test\r\n\r\n",
    # header syntax
    "header_name_space": raw(method="GET", headers=[("X Foo", "bar")]),
    "header_name_quote": raw(method="GET", headers=[('X"Foo', "bar")]),
    "header_no_colon": b"GET " + T.encode() + b" HTTP/1.1\r\nHost: upstream.test\r\nXFoo bar\r\n\r\n",
    "empty_header_name": b"GET " + T.encode() + b" HTTP/1.1\r\nHost: upstream.test\r\n: bar\r\n\r\n",
    "duplicate_host": raw(method="GET", headers=[("Host", "other.test")]),
    # size limits (max_head_bytes 32768, max_headers 100 in the test config)
    "head_over_max_head_bytes": raw(method="GET", headers=[("X-Big", "a" * 33000)]),
    "more_than_max_headers": raw(method="GET", headers=[("X-H%d" % i, "v") for i in range(101)]),
}

CHUNK_VECTORS = {
    "chunk_size_0x": chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_negative": chunked(b"-1\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_space_semicolon": chunked(b"5 ;\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_huge_hex": chunked(b"ffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_empty": chunked(b"\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_plus": chunked(b"+5\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_nonhex": chunked(b"5g\r\nhello\r\n0\r\n\r\n"),
    "chunk_bare_lf": chunked(b"5\nhello\n0\n\n"),
    "chunk_missing_crlf_after_data": chunked(b"5\r\nhelloXX0\r\n\r\n"),
    "chunk_data_longer_than_size": chunked(b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    "second_chunk_bad": chunked(b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"),
    "trailer_obs_fold": chunked(b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
}


def expect_400_and_close(proxy, payload):
    with RawConn(proxy.port, timeout=5) as c:
        try:
            c.send(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = c.read_response()
        except Closed as e:
            raise AssertionError("connection closed without a 400 response: %s" % e)
        assert r.status == 400, "got %d %r, body %r" % (r.status, r.headers, r.body[:300])
        body = r.json()
        assert body.get("error") == "bad_request", body
        assert body.get("reason")
        assert r.header("x-sluice-blocked") is None
        assert c.is_closed(3.0), "connection left open after a 400"


def assert_still_serving(proxy):
    r = proxy.get("http://upstream.test/fixed?n=7", timeout=5)
    assert r.status_code == 200 and r.content == pattern_bytes(7)


@pytest.mark.parametrize("name", sorted(HEAD_VECTORS))
def test_head_vector_rejected(proxy, upstream, name):
    expect_400_and_close(proxy, HEAD_VECTORS[name])
    time.sleep(0.2)
    snap = upstream.snapshot()
    assert snap["bytes_received"] == 0, "upstream received %d bytes: %r" % (
        snap["bytes_received"], [bytes(b[:300]) for b in upstream.conn_bytes.values()])
    assert proxy.alive()
    assert_still_serving(proxy)


@pytest.mark.parametrize("name", sorted(CHUNK_VECTORS))
def test_chunk_vector_rejected(proxy, upstream, name):
    expect_400_and_close(proxy, CHUNK_VECTORS[name])
    time.sleep(0.2)
    snap = upstream.snapshot()
    assert snap["requests"] == [], "upstream received a complete request: %r" % [q.describe() for q in snap["requests"]]
    for b in upstream.conn_bytes.values():
        assert b"/smuggled" not in b
    assert proxy.alive()
    assert_still_serving(proxy)


def test_headers_at_the_limits_are_accepted(proxy, upstream):
    # the boundary cases of the two vectors above: just under the limits passes
    with RawConn(proxy.port) as c:
        c.send(raw(method="GET", headers=[("X-H%d" % i, "v") for i in range(90)]))
        r = c.read_response()
        assert r.status == 200
        c.send(raw(method="GET", headers=[("X-Big", "a" * 30000)]))
        r = c.read_response()
        assert r.status == 200
    assert len(upstream.wait_requests(2)) == 2


def test_valid_chunk_extension_accepted(proxy, upstream):
    with RawConn(proxy.port) as c:
        c.send(chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n"))
        r = c.read_response()
        assert r.status == 200
    assert upstream.wait_requests(1)[0].body == b"hello"
