"""Interception must not let one agent connection stall or break the others
(the session sluice runs a single worker, so any blocking shows)."""

import concurrent.futures
import hashlib
import socket
import ssl
import struct
import subprocess
import time

import tlshelpers as th

HELLO = b"hello from secure\n"


def curl_hello(sluice, env, path="/hello"):
    p = subprocess.run(["curl", "-sS", "--max-time", "15", "--proxy", sluice.proxy, "--cacert",
                        sluice.ca_path, f"https://secure.test{path}"],
                       capture_output=True, timeout=20, env=env)
    return p.returncode, p.stdout, p.stderr


def test_stalled_handshake_does_not_block_others(sluice, client_env):
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    assert " 200 " in status
    sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    try:
        t0 = time.monotonic()
        rc, out, err = curl_hello(sluice, client_env)
        assert rc == 0 and out == HELLO, err
        assert time.monotonic() - t0 < 5
    finally:
        sock.close()


def test_garbage_tls_record_closes_only_that_tunnel(sluice, client_env):
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    assert " 200 " in status
    sock.sendall(b"\x16\x03\x01\x00\x10" + b"\xff" * 16)
    sock.settimeout(10)
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert not got.startswith(b"HTTP/1.1 200"), got  # never read as a request
    rc, out, err = curl_hello(sluice, client_env)
    assert rc == 0 and out == HELLO, err


def test_client_abort_mid_download(sluice, client_env):
    """An agent that goes away in the middle of a large intercepted
    response leaves sluice serving the next one."""
    sock, status, _ = th.connect_tunnel(sluice.port, "secure.test", 443)
    assert " 200 " in status
    t = ssl.create_default_context(cafile=sluice.ca_path).wrap_socket(
        sock, server_hostname="secure.test")
    t.sendall(b"GET /big?n=67108864 HTTP/1.1\r\nHost: secure.test\r\n\r\n")
    got = 0
    while got < 256 * 1024:
        chunk = t.recv(65536)
        assert chunk
        got += len(chunk)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    t.close()
    rc, out, err = curl_hello(sluice, client_env)
    assert rc == 0 and out == HELLO, err


def test_parallel_clients(sluice, client_env):
    n = 1024 * 1024 + 7
    want = hashlib.sha256(th.big_body(n)).hexdigest()

    def one(i):
        rc, out, err = curl_hello(sluice, client_env, f"/big?n={n}" if i % 2 else "/hello")
        assert rc == 0, err
        return hashlib.sha256(out).hexdigest() if i % 2 else out

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(16)))
    for i, r in enumerate(results):
        assert r == (want if i % 2 else HELLO)
