"""A small, deliberately literal HTTP/1.1 origin server for the integration tests.

It is written on raw sockets (not http.server) so that the tests control every
byte it sends and can see every byte it receives. It runs one thread per
connection on 127.0.0.1 and records each request it parses (head, headers,
body digest, trailers) plus every byte received on every connection, so a test
can prove that a refused request never reached it.

Endpoints (path before '?'; query parameters in brackets):
  /fixed [n=13]              n bytes of a fixed pattern, Content-Length
  /bytes [n, seed]           n pseudo-random bytes (seeded), Content-Length,
                             header X-Body-Sha256
  /stream [n]                n bytes streamed in 64 KiB writes, Content-Length
                             (for backpressure tests; never materialised)
  /chunked [n=1000, chunks=4, trailers=1]
                             chunked body; with trailers: X-Body-Sha256 trailer
  /slow [chunks=5, size=100, delay=0.2, mode=cl|chunked, first_delay=0]
                             body written piece by piece with sleeps
  /echo                      the request body back, Content-Length; headers
                             X-Request-Len and X-Request-Sha256
  /info                      JSON describing the request as received
  /status [code=200]         that status; 204/304 with no body
  /close [n=1000]            close-delimited body (no CL, no TE)
  /hang                      reads the request, never answers
  /malformed [kind]          a broken response (garbage, badstatus, cl_te,
                             dup_cl, bad_chunk, truncated)
  /hop                       a response carrying hop-by-hop headers
  /slowread [delay=3]        waits `delay` s after the head before reading the body,
                             then answers with the body's sha256
  /early-hints               a 103 interim response, then 200 "after hints"
  /truncated [n=1000, send=500]
                             announces Content-Length n, sends `send` bytes, closes
  /bighead [size=40000]      a response head of about `size` bytes
  /connclose                 answers with Connection: close, then closes
  any endpoint [close_after=S]
                             after answering, silently close the connection S
                             seconds later (a keep-alive the server drops)
  /expect-417                answers 417 to Expect: 100-continue, never reads body
HEAD on any endpoint sends the GET headers without a body.
Every response carries X-Upstream-Conn (connection number, from 1).
"""

import hashlib
import json
import random
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

PATTERN = b"sluice-upstream-0123456789abcdefghijklmnopqrstuvwxyz\n"
MAX_HEAD = 1 << 20
KEEP_BODY = 8 << 20  # bodies up to this size are stored verbatim

_bytes_cache = {}
_bytes_lock = threading.Lock()


def pattern_bytes(n):
    """n bytes of the fixed pattern."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


def seeded_bytes(n, seed=1):
    """n pseudo-random bytes, the same for the same (n, seed); cached."""
    key = (n, seed)
    with _bytes_lock:
        b = _bytes_cache.get(key)
        if b is None:
            b = random.Random(seed).randbytes(n)
            _bytes_cache[key] = b
        return b


class BadRequest(Exception):
    pass


class Request:
    """One request as the upstream parsed it."""

    def __init__(self):
        self.conn_id = 0
        self.index_on_conn = 0
        self.raw_head = b""
        self.method = ""
        self.target = ""
        self.version = ""
        self.headers = []  # [(name, value)] as received, in order
        self.body = b""  # verbatim if <= KEEP_BODY, else None
        self.body_len = 0
        self.body_sha256 = ""
        self.chunked = False
        self.trailers = []
        self.sent_100 = False
        self.complete = False

    def header(self, name):
        """First value of a header (case-insensitive) or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def path(self):
        return urlsplit(self.target).path

    def describe(self):
        return {
            "conn_id": self.conn_id,
            "index_on_conn": self.index_on_conn,
            "method": self.method,
            "target": self.target,
            "version": self.version,
            "headers": self.headers,
            "body_len": self.body_len,
            "body_sha256": self.body_sha256,
            "chunked": self.chunked,
            "trailers": self.trailers,
        }


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock, on_bytes):
        self.sock = sock
        self.buf = bytearray()
        self.on_bytes = on_bytes

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise EOFError
        self.on_bytes(data)
        self.buf += data

    def read_until(self, sep, limit):
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(sep)])
                del self.buf[: i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            start = max(0, len(self.buf) - len(sep) + 1)
            self._fill()

    def read_exact(self, n, sink):
        while n > 0:
            if not self.buf:
                self._fill()
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def has_buffered(self):
        return bool(self.buf)


class Upstream:
    """A threaded HTTP/1.1 origin on 127.0.0.1:<port>."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.requests = []  # complete requests, in arrival order
        self.partial = []  # requests whose head arrived but not the whole body
        self.connections = 0
        self.bytes_received = 0
        self.conn_bytes = {}  # conn_id -> bytearray (first 64 KiB)
        self.stream_sent = {}  # conn_id -> bytes written by /stream so far
        self.closed_at = {}  # conn_id -> monotonic time the connection ended
        self.stopping = threading.Event()
        self.live = set()
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    # ---- public helpers for tests ----

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.partial.clear()
            self.connections = 0
            self.bytes_received = 0
            self.conn_bytes.clear()

    def wait_requests(self, n, timeout=5.0):
        """Wait until at least n complete requests were recorded; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        with self.lock:
            return list(self.requests)

    def snapshot(self):
        with self.lock:
            return {
                "requests": list(self.requests),
                "partial": list(self.partial),
                "connections": self.connections,
                "bytes_received": self.bytes_received,
            }

    def close(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            live = list(self.live)
        for c in live:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass

    # ---- server ----

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                conn_id = self.connections
                self.conn_bytes[conn_id] = bytearray()
                self.live.add(conn)
            t = threading.Thread(target=self._serve, args=(conn, conn_id), daemon=True)
            t.start()

    def _on_bytes(self, conn_id, data):
        with self.lock:
            self.bytes_received += len(data)
            b = self.conn_bytes.get(conn_id)
            if b is not None and len(b) < 65536:
                b += data[: 65536 - len(b)]

    def _serve(self, conn, conn_id):
        conn.settimeout(120)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rd = _Reader(conn, lambda d: self._on_bytes(conn_id, d))
        index = 0
        try:
            while not self.stopping.is_set():
                index += 1
                req = self._read_request(rd, conn, conn_id, index)
                if req is None:
                    return
                keep = self._respond(conn, req)
                if not keep:
                    return
                close_after = parse_qs(urlsplit(req.target).query).get("close_after")
                if close_after:
                    time.sleep(float(close_after[-1]))
                    return
        except (EOFError, ConnectionError, socket.timeout, OSError):
            return
        except BadRequest as e:
            self.errors.append(str(e))
            try:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
        finally:
            with self.lock:
                self.live.discard(conn)
                self.closed_at[conn_id] = time.monotonic()
            try:
                conn.close()
            except OSError:
                pass

    def _read_request(self, rd, conn, conn_id, index):
        try:
            head = rd.read_until(b"\r\n\r\n", MAX_HEAD)
        except EOFError:
            return None
        req = Request()
        req.conn_id = conn_id
        req.index_on_conn = index
        req.raw_head = head
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            raise BadRequest("bad request line %r" % lines[0])
        req.method, req.target, req.version = parts
        for line in lines[1:]:
            k, sep, v = line.decode("latin-1").partition(":")
            if not sep:
                raise BadRequest("bad header line %r" % line)
            req.headers.append((k, v.strip(" \t")))
        with self.lock:
            self.partial.append(req)

        sha = hashlib.sha256()
        kept = bytearray()
        total = [0]

        def sink(data):
            sha.update(data)
            total[0] += len(data)
            if total[0] <= KEEP_BODY:
                kept.extend(data)

        if req.path == "/slowread":
            # a slow consumer: read nothing for a while after the head
            q = parse_qs(urlsplit(req.target).query)
            time.sleep(float(q.get("delay", ["3"])[-1]))
        expect = (req.header("expect") or "").lower() == "100-continue"
        if expect:
            if req.path == "/expect-417":
                conn.sendall(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                req.complete = True
                self._record(req)
                return None
            if not rd.has_buffered():
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                req.sent_100 = True

        te = req.header("transfer-encoding")
        cl = req.header("content-length")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BadRequest("unsupported transfer-encoding %r" % te)
            req.chunked = True
            while True:
                line = rd.read_until(b"\r\n", 4096)[:-2]
                size_s = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise BadRequest("bad chunk size %r" % line)
                if size == 0:
                    break
                rd.read_exact(size, sink)
                if rd.read_until(b"\r\n", 2) != b"\r\n":
                    raise BadRequest("missing CRLF after chunk")
            while True:
                line = rd.read_until(b"\r\n", 65536)[:-2]
                if not line:
                    break
                k, _, v = line.decode("latin-1").partition(":")
                req.trailers.append((k, v.strip()))
        elif cl is not None:
            try:
                n = int(cl)
            except ValueError:
                raise BadRequest("bad content-length %r" % cl)
            rd.read_exact(n, sink)
        req.body_len = total[0]
        req.body_sha256 = sha.hexdigest()
        req.body = bytes(kept) if total[0] <= KEEP_BODY else None
        req.complete = True
        self._record(req)
        return req

    def _record(self, req):
        with self.lock:
            if req in self.partial:
                self.partial.remove(req)
            self.requests.append(req)

    # ---- responses ----

    def _respond(self, conn, req):
        u = urlsplit(req.target)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        path = u.path
        head_only = req.method == "HEAD"
        conn_hdr = (req.header("connection") or "").lower()
        if req.version == "HTTP/1.0":
            keep = "keep-alive" in conn_hdr
        else:
            keep = "close" not in conn_hdr
        extra = [("X-Upstream-Conn", str(req.conn_id))]

        def send_head(status, headers, reason=None):
            reason = reason or {
                200: "OK", 204: "No Content", 304: "Not Modified", 404: "Not Found",
                400: "Bad Request", 201: "Created", 302: "Found", 500: "Internal Server Error",
            }.get(status, "Status")
            lines = ["HTTP/1.1 %d %s" % (status, reason)]
            for k, v in headers + extra:
                lines.append("%s: %s" % (k, v))
            if not keep:
                lines.append("Connection: close")
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

        def send_fixed(status, body, headers=()):
            send_head(status, list(headers) + [("Content-Length", str(len(body)))])
            if not head_only and body:
                conn.sendall(body)

        if path == "/fixed":
            send_fixed(200, pattern_bytes(int(q.get("n", 13))), [("Content-Type", "text/plain")])
        elif path == "/bytes":
            body = seeded_bytes(int(q["n"]), int(q.get("seed", 1)))
            send_fixed(200, body, [("Content-Type", "application/octet-stream"),
                                   ("X-Body-Sha256", hashlib.sha256(body).hexdigest())])
        elif path == "/stream":
            n = int(q["n"])
            send_head(200, [("Content-Length", str(n))])
            if not head_only:
                block = pattern_bytes(65536)
                sent = 0
                while sent < n:
                    k = min(len(block), n - sent)
                    conn.sendall(block[:k])
                    sent += k
                    with self.lock:
                        self.stream_sent[req.conn_id] = sent
        elif path == "/chunked":
            n = int(q.get("n", 1000))
            chunks = max(1, int(q.get("chunks", 4)))
            trailers = q.get("trailers", "1") == "1"
            body = pattern_bytes(n)
            hdrs = [("Transfer-Encoding", "chunked")]
            if trailers:
                hdrs.append(("Trailer", "X-Body-Sha256"))
            send_head(200, hdrs)
            if not head_only:
                step = (n + chunks - 1) // chunks or 1
                out = bytearray()
                for i in range(0, n, step):
                    piece = body[i: i + step]
                    out += b"%x\r\n" % len(piece) + piece + b"\r\n"
                out += b"0\r\n"
                if trailers:
                    out += b"X-Body-Sha256: " + hashlib.sha256(body).hexdigest().encode() + b"\r\n"
                out += b"\r\n"
                conn.sendall(bytes(out))
        elif path == "/slow":
            chunks = int(q.get("chunks", 5))
            size = int(q.get("size", 100))
            delay = float(q.get("delay", 0.2))
            first_delay = float(q.get("first_delay", 0))
            mode = q.get("mode", "cl")
            piece = pattern_bytes(size)
            if first_delay:
                time.sleep(first_delay)
            if mode == "chunked":
                send_head(200, [("Transfer-Encoding", "chunked")])
            else:
                send_head(200, [("Content-Length", str(chunks * size))])
            if not head_only:
                for i in range(chunks):
                    if i:
                        time.sleep(delay)
                    if mode == "chunked":
                        conn.sendall(b"%x\r\n" % size + piece + b"\r\n")
                    else:
                        conn.sendall(piece)
                if mode == "chunked":
                    conn.sendall(b"0\r\n\r\n")
        elif path == "/echo":
            body = req.body if req.body is not None else b""
            if req.body is None:
                # too big to keep: answer with the digest only
                body = req.body_sha256.encode()
            send_fixed(200, body, [("X-Request-Len", str(req.body_len)),
                                   ("X-Request-Sha256", req.body_sha256),
                                   ("X-Request-Chunked", "1" if req.chunked else "0")])
        elif path == "/info":
            body = json.dumps(req.describe()).encode()
            send_fixed(200, body, [("Content-Type", "application/json")])
        elif path == "/status":
            code = int(q.get("code", 200))
            if code in (204, 304) or 100 <= code < 200:
                hdrs = [("ETag", '"abc"')] if code == 304 else []
                send_head(code, hdrs)
            else:
                send_fixed(code, b"")
        elif path == "/close":
            n = int(q.get("n", 1000))
            keep = False
            send_head(200, [("Content-Type", "text/plain")])
            if not head_only:
                conn.sendall(pattern_bytes(n))
            return False
        elif path == "/hang":
            self.stopping.wait(60)
            return False
        elif path == "/malformed":
            kind = q.get("kind", "garbage")
            raw = {
                "garbage": b"THIS IS NOT HTTP\r\n\r\n",
                "badstatus": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
                "cl_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                "dup_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                "bad_chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                "nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
            }[kind]
            conn.sendall(raw)
            return False
        elif path == "/truncated":
            n = int(q.get("n", 1000))
            send_head(200, [("Content-Length", str(n))])
            if not head_only:
                conn.sendall(pattern_bytes(int(q.get("send", 500))))
            time.sleep(0.1)
            return False
        elif path == "/bighead":
            size = int(q.get("size", 40000))
            hdrs = [("X-Filler-%d" % i, "f" * 990) for i in range(size // 1000)]
            send_fixed(200, b"big", hdrs)
        elif path == "/connclose":
            keep = False
            send_fixed(200, b"bye")
            return False
        elif path == "/slowread":
            send_fixed(200, req.body_sha256.encode(), [("X-Request-Len", str(req.body_len))])
        elif path == "/early-hints":
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            send_fixed(200, b"after hints")
        elif path == "/gzip":
            # The request as received, gzip-compressed whatever was accepted.
            import gzip
            body = gzip.compress(json.dumps(req.describe()).encode())
            send_fixed(200, body, [("Content-Type", "application/json"),
                                   ("Content-Encoding", "gzip")])
        elif path == "/hop":
            send_fixed(200, b"hop", [("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "must-not-pass"),
                                     ("Keep-Alive", "timeout=99"), ("Proxy-Connection", "keep-alive"),
                                     ("X-Resp-End", "kept")])
        else:
            send_fixed(404, b"not found\n")
        return keep


if __name__ == "__main__":
    u = Upstream()
    print("upstream on", u.addr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        u.close()
