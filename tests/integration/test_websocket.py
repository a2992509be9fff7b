"""WebSocket inspection through the real proxy (issue 8): after an accepted
upgrade sluice relays frames, holds each message until it is complete and
scanned, and closes with 1008 (finding), 1009 (too big) or 1002 (protocol
error). python3-websockets plays both the agent and the upstream server; the
agent reaches sluice as a forward proxy (absolute-form GET for ws://) or
through an intercepted CONNECT (TLS for wss://). Samples come from the
rules' own examples."""

import asyncio
import base64
import os
import socket
import ssl
import struct
import sys
import time
from pathlib import Path

import pytest
import websockets
import websockets.legacy.client as wsclient
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "tls"))
import tlshelpers as th  # noqa: E402
from sluice_harness import free_port  # noqa: E402
from sluice_harness import rule_example as example  # noqa: E402  (the rules' own examples)

ROOT = Path(__file__).resolve().parents[2]


AWS = example("aws-access-key-id").split("=")[-1].strip()
INJECTION = example("inj-ignore-previous-instructions")
TIMEOUT = 10


class Upstream:
    """A websockets server on 127.0.0.1: echoes, records what it received, and
    answers a few commands ("inject", "big N", "ping")."""

    def __init__(self, compression="deflate", ssl_ctx=None, replies=None):
        self.replies = replies or {}
        self.compression = compression
        self.ssl_ctx = ssl_ctx
        self.received = []
        self.port = free_port()
        self.server = None

    async def handler(self, ws, path):
        try:
            async for msg in ws:
                self.received.append(msg)
                if msg in self.replies:
                    await ws.send(self.replies[msg])
                elif msg == "inject":
                    await ws.send("Here is the page you asked for. " + INJECTION)
                elif isinstance(msg, str) and msg.startswith("big "):
                    await ws.send("x" * int(msg[4:]))
                elif msg == "ping":
                    await asyncio.wait_for(await ws.ping(b"from-server"), TIMEOUT)
                    await ws.send("pong received")
                else:
                    await ws.send(msg)
        except websockets.ConnectionClosed:
            pass

    async def __aenter__(self):
        self.server = await websockets.serve(self.handler, "127.0.0.1", self.port,
                                             compression=self.compression, ssl=self.ssl_ctx,
                                             max_size=None)
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


class AbsoluteFormClient(wsclient.WebSocketClientProtocol):
    """The opening handshake in absolute form, as a forward proxy wants it."""

    def write_http_request(self, path, headers):
        self.path = path
        self.request_headers = headers
        request = "GET http://%s%s HTTP/1.1\r\n" % (headers["Host"], path)
        self.transport.write((request + str(headers)).encode())


def ws_connect(proxy, path="/", compression="deflate", **kw):
    """ws://ws.test/path through sluice as a forward proxy."""
    return websockets.connect("ws://ws.test" + path, host="127.0.0.1", port=proxy.port,
                              create_protocol=AbsoluteFormClient, compression=compression,
                              open_timeout=TIMEOUT, max_size=None, **kw)


def tunnel(proxy_port, host, port):
    s, status, _ = th.connect_tunnel(proxy_port, host, port)
    assert " 200 " in status, status
    s.settimeout(None)
    return s


def sluice_for(sluice_factory, up, **over):
    cfg = {"routes": [{"host": "ws.test", "to": "127.0.0.1:%d" % up.port}]}
    for k, v in over.items():
        cfg[k] = v
    return sluice_factory(cfg)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def until_close(ws):
    """Messages received until the connection closes; (messages, code, reason)."""
    got = []
    try:
        while True:
            got.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
    except websockets.ConnectionClosed as e:
        return got, e.code, e.reason


async def closed_with(ws):
    """Wait for the connection to close; return (code, reason)."""
    _, code, reason = await until_close(ws)
    return code, reason


# --------------------------------------------------------------------------
# messages that pass
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_binary_fragmented(sluice_factory, compression):
    async def main():
        async with Upstream(compression) as up:
            proxy = sluice_for(sluice_factory, up)
            async with ws_connect(proxy, "/chat?room=1", compression) as ws:
                if compression:
                    assert "permessage-deflate" in ws.response_headers["Sec-WebSocket-Extensions"]
                await ws.send("hello")
                assert await ws.recv() == "hello"
                blob = bytes(range(256)) * 40
                await ws.send(blob)
                assert await ws.recv() == blob
                await ws.send(["frag", "mented ", "message"])
                assert await ws.recv() == "fragmented message"
                await ws.send([b"\x00\x01", b"\x02"])
                assert await ws.recv() == b"\x00\x01\x02"
                await ws.send("")
                assert await ws.recv() == ""
            assert up.received == ["hello", blob, "fragmented message", b"\x00\x01\x02", ""]
            audit = proxy.audit(1)
            ev = [e for e in audit if e.get("status") == 101][-1]
            assert ev["verdict"] == "allow"
            assert "websocket" in ev.get("reason", "")
    run(main())


def test_ping_pong_both_ways(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up)
            async with ws_connect(proxy) as ws:
                waiter = await ws.ping(b"from-agent")
                await asyncio.wait_for(waiter, TIMEOUT)
                await ws.send("ping")  # the server pings the agent, then answers
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "pong received"
    run(main())


def test_long_clean_conversation(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up)
            async with ws_connect(proxy) as ws:
                for i in range(300):
                    msg = "message %d: the build passed, %s" % (i, "ok " * (i % 50))
                    await ws.send(msg)
                    assert await ws.recv() == msg
                await ws.send("big 200000")
                assert await ws.recv() == "x" * 200000
            assert len(up.received) == 301
            ev = [e for e in proxy.audit(1) if e.get("status") == 101][-1]
            assert ev["verdict"] == "allow"
            assert "301 messages to the upstream, 301 to the agent" in ev["reason"]
    run(main())


# --------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_secret_to_upstream_is_refused_with_1008(sluice_factory, compression):
    async def main():
        async with Upstream(compression) as up:
            proxy = sluice_for(sluice_factory, up)
            async with ws_connect(proxy, compression=compression) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                await ws.send("my config: aws_access_key_id = " + AWS)
                code, reason = await closed_with(ws)
            assert code == 1008
            assert "aws-access-key-id" in reason and AWS not in reason
            await asyncio.sleep(0.2)
            assert up.received == ["hello"]
            ev = [e for e in proxy.audit(1) if e.get("status") == 101][-1]
            assert ev["verdict"] == "block" and ev["rule"] == "aws-access-key-id"
            assert "aws-access-key-id" in ev["findings"]
            assert AWS not in proxy.audit_text() and AWS not in proxy.stderr()
    run(main())


def test_secret_split_across_fragments_is_caught(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up)
            async with ws_connect(proxy) as ws:
                await ws.send(["aws_access_key_id = " + AWS[:7], AWS[7:13], AWS[13:] + " done"])
                code, reason = await closed_with(ws)
            assert code == 1008 and "aws-access-key-id" in reason
            await asyncio.sleep(0.2)
            assert up.received == []
    run(main())


def test_prompt_injection_from_server_is_not_delivered(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up)
            async with ws_connect(proxy) as ws:
                await ws.send("inject")
                got, code, reason = await until_close(ws)
            assert got == []
            assert code == 1008 and "inj-" in reason
            ev = [e for e in proxy.audit(1) if e.get("status") == 101][-1]
            assert ev["verdict"] == "block" and ev["scanner"] == "inspect:injection"
    run(main())


def test_injection_passes_when_responses_are_not_inspected(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up, inspect={"responses": False})
            async with ws_connect(proxy) as ws:
                await ws.send("inject")
                assert INJECTION in await ws.recv()
    run(main())


REAL = "sk-test-REALVALUE-7f3a9c1e5b2d4680aa11"
PH = "PH-openai-placeholder-0123"


def test_credential_real_value_and_echo(sluice_factory, tmp_path):
    """The gateway's own credentials: a real value from the agent is an
    exfiltration attempt, an upstream echo of it cannot be redacted inside a
    message; both close with 1008 and the value reaches no one."""
    key = tmp_path / "openai.key"
    key.write_text(REAL + "\n")

    async def main():
        async with Upstream(replies={"leak": "debug: token=" + REAL}) as up:
            proxy = sluice_for(sluice_factory, up, secrets=[
                {"name": "openai", "source": {"file": str(key)}, "placeholder": PH,
                 "hosts": ["ws.test"]}])
            async with ws_connect(proxy) as ws:
                await ws.send("placeholder " + PH)  # worthless outside: passes as is
                assert await ws.recv() == "placeholder " + PH
                await ws.send("token " + REAL)
                code, reason = await closed_with(ws)
            assert code == 1008 and "secret.real-value-from-sandbox" in reason
            async with ws_connect(proxy) as ws:
                await ws.send("leak")
                got, code, reason = await until_close(ws)
            assert got == [] and code == 1008 and "secret.echo-not-redactable" in reason
            await asyncio.sleep(0.2)
            assert up.received == ["placeholder " + PH, "leak"]
            text = proxy.audit_text() + proxy.stderr()
            assert REAL not in text
            rules = [e.get("rule") for e in proxy.audit(3) if e.get("status") == 101]
            assert rules[-2:] == ["secret.real-value-from-sandbox", "secret.echo-not-redactable"]
    run(main())


# --------------------------------------------------------------------------
# limits and protocol errors
# --------------------------------------------------------------------------


def test_oversized_message_closes_1009_both_ways(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up, limits={"max_ws_message": "64KiB"})
            async with ws_connect(proxy) as ws:
                await ws.send("y" * 60000)
                assert len(await ws.recv()) == 60000
                await ws.send("y" * 100000)
                code, _ = await closed_with(ws)
            assert code == 1009
            await asyncio.sleep(0.2)
            assert len(up.received) == 1
            # Server to agent, too.
            async with ws_connect(proxy) as ws:
                await ws.send("big 70000")
                code, _ = await closed_with(ws)
            assert code == 1009
    run(main())


def raw_handshake(proxy_port, extensions=None):
    """A raw agent: absolute-form upgrade through sluice; returns the socket
    and the response head."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    head = ("GET http://ws.test/ HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % key)
    if extensions:
        head += "Sec-WebSocket-Extensions: %s\r\n" % extensions
    s.sendall((head + "\r\n").encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        assert chunk, resp
        resp += chunk
    head, rest = resp.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s, head.decode(), rest


def masked_frame(first, payload):
    mask = os.urandom(4)
    n = len(payload)
    h = bytes([first]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_close(s, buf=b""):
    """Read server frames until a close; return its status code."""
    s.settimeout(TIMEOUT)
    while True:
        while len(buf) >= 2:
            n = buf[1] & 0x7f
            hl = 2 if n < 126 else 4
            if n == 126 and len(buf) >= 4:
                n = struct.unpack(">H", buf[2:4])[0]
            if len(buf) < hl + n:
                break
            op, payload, buf = buf[0] & 0x0f, buf[hl:hl + n], buf[hl + n:]
            if op == 8:
                return struct.unpack(">H", payload[:2])[0], payload[2:].decode()
        chunk = s.recv(4096)
        if not chunk:
            return None, ""
        buf += chunk


def test_rsv1_without_extension_is_a_protocol_error(sluice_factory):
    async def main():
        async with Upstream(compression=None) as up:
            proxy = sluice_for(sluice_factory, up)
            s, head, rest = await asyncio.to_thread(raw_handshake, proxy.port)
            assert "permessage-deflate" not in head
            await asyncio.to_thread(s.sendall, masked_frame(0x81, b"ok"))
            await asyncio.to_thread(s.sendall, masked_frame(0xC1, b"compressed?"))
            code, reason = await asyncio.to_thread(read_close, s, rest)
            s.close()
            assert code == 1002 and "RSV1" in reason
            await asyncio.sleep(0.2)
            assert up.received == ["ok"]
            ev = [e for e in proxy.audit(1) if e.get("status") == 101][-1]
            assert ev["verdict"] == "error" and ev["rule"] == "websocket.protocol-error"
    run(main())


def test_unmasked_client_frame_is_a_protocol_error(sluice_factory):
    async def main():
        async with Upstream(compression=None) as up:
            proxy = sluice_for(sluice_factory, up)
            s, _, rest = await asyncio.to_thread(raw_handshake, proxy.port)
            await asyncio.to_thread(s.sendall, b"\x81\x02hi")
            code, _ = await asyncio.to_thread(read_close, s, rest)
            s.close()
            assert code == 1002
            await asyncio.sleep(0.2)
            assert up.received == []
    run(main())


def test_secret_in_compressed_raw_message_is_caught(sluice_factory):
    """A compressed message built by hand (context takeover across two
    messages) is inflated before the scan."""
    import zlib

    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up)
            s, head, rest = await asyncio.to_thread(raw_handshake, proxy.port, "permessage-deflate")
            assert "permessage-deflate" in head
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            for text in (b"first message, harmless", b"aws_access_key_id = " + AWS.encode()):
                z = co.compress(text) + co.flush(zlib.Z_SYNC_FLUSH)
                await asyncio.to_thread(s.sendall, masked_frame(0xC1, z[:-4]))
            code, reason = await asyncio.to_thread(read_close, s, rest)
            s.close()
            assert code == 1008 and "aws-access-key-id" in reason
            await asyncio.sleep(0.2)
            assert up.received == ["first message, harmless"]
    run(main())


# --------------------------------------------------------------------------
# through CONNECT: plain and intercepted TLS (wss://)
# --------------------------------------------------------------------------


def test_plain_websocket_inside_connect_is_inspected(sluice_factory):
    async def main():
        async with Upstream() as up:
            proxy = sluice_for(sluice_factory, up)
            sock = await asyncio.to_thread(tunnel, proxy.port, "ws.test", 80)
            async with websockets.connect("ws://ws.test/", sock=sock, open_timeout=TIMEOUT) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                await ws.send("token " + AWS)
                code, _ = await closed_with(ws)
            assert code == 1008
            assert up.received == ["hi"]
    run(main())


def test_wss_through_interception(sluice_factory, tmp_path):
    d = str(tmp_path)
    ca, ca_key = th.make_ca(d, "upca", "ws test CA")
    cert, key = th.make_leaf(d, "wsleaf", ["ws.test"], ca, ca_key)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    ca_out = str(tmp_path / "sluice-ca.pem")

    async def main():
        async with Upstream(ssl_ctx=server_ctx) as up:
            proxy = sluice_factory({
                "routes": [{"host": "ws.test", "to": "127.0.0.1:%d" % up.port, "ca_file": ca}],
                "tls": {"intercept": True, "ca_out": ca_out},
            })
            client_ctx = ssl.create_default_context(cafile=ca_out)
            for deflate in ("deflate", None):
                sock = await asyncio.to_thread(tunnel, proxy.port, "ws.test", 443)
                async with websockets.connect("wss://ws.test/", sock=sock, ssl=client_ctx,
                                              server_hostname="ws.test", compression=deflate,
                                              open_timeout=TIMEOUT) as ws:
                    await ws.send(["split ", "over frames"])
                    assert await ws.recv() == "split over frames"
                    await ws.send("inject")
                    code, reason = await closed_with(ws)
                assert code == 1008 and "inj-" in reason
            sock = await asyncio.to_thread(tunnel, proxy.port, "ws.test", 443)
            async with websockets.connect("wss://ws.test/", sock=sock, ssl=client_ctx,
                                          server_hostname="ws.test",
                                          open_timeout=TIMEOUT) as ws:
                await ws.send("aws_access_key_id = " + AWS)
                code, _ = await closed_with(ws)
            assert code == 1008
            assert AWS not in repr(up.received)
    run(main())


# --------------------------------------------------------------------------
# upgrades other than WebSocket
# --------------------------------------------------------------------------


class AnyUpgradeUpstream:
    """A raw upstream that switches to any protocol asked for (and echoes
    bytes after), or, with always_101, switches even when nobody asked."""

    def __init__(self, always_101=False):
        import threading
        self.always_101 = always_101
        self.heads = []
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            self.heads.append(head.decode("latin-1"))
            if self.always_101 or b"\nupgrade:" in head.lower():
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\n"
                             b"Connection: Upgrade\r\n\r\nraw bytes, never scanned")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    def close(self):
        self.srv.close()


def send_upgrade(proxy_port, protocol="foo"):
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT)
    s.sendall(("GET http://ws.test/ HTTP/1.1\r\nHost: ws.test\r\nUpgrade: %s\r\n"
               "Connection: Upgrade, close\r\n\r\n" % protocol).encode())
    data = b""
    s.settimeout(TIMEOUT)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data


def test_other_upgrades_are_not_forwarded_while_inspecting(sluice_factory):
    """h2c or a custom protocol would be a blind byte tunnel: sluice drops the
    Upgrade, so the upstream answers in HTTP/1.1."""
    up = AnyUpgradeUpstream()
    try:
        proxy = sluice_for(sluice_factory, up)
        data = send_upgrade(proxy.port, "h2c")
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        assert data.endswith(b"ok")
        assert "upgrade" not in up.heads[-1].lower()
    finally:
        up.close()


def test_a_101_nobody_was_allowed_to_ask_for_is_refused(sluice_factory):
    up = AnyUpgradeUpstream(always_101=True)
    try:
        proxy = sluice_for(sluice_factory, up)
        data = send_upgrade(proxy.port, "foo")
        assert data.startswith(b"HTTP/1.1 502"), data[:200]
        assert b"raw bytes" not in data
    finally:
        up.close()


def test_other_upgrades_are_a_tunnel_without_inspection(sluice_factory):
    up = AnyUpgradeUpstream()
    try:
        proxy = sluice_for(sluice_factory, up, inspect={"enabled": False})
        data = send_upgrade(proxy.port, "foo")
        assert data.startswith(b"HTTP/1.1 101"), data[:200]
        assert b"raw bytes, never scanned" in data
    finally:
        up.close()
