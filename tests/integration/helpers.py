"""Raw-socket HTTP client pieces for cases that curl and requests cannot express."""

import hashlib
import json
import os
import socket
import subprocess
import time


class Response:
    def __init__(self):
        self.version = ""
        self.status = 0
        self.reason = ""
        self.headers = []
        self.body = b""
        self.trailers = []
        self.chunked = False
        self.interim = []  # 1xx status codes seen before this response
        self.raw_head = b""

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def trailer(self, name):
        name = name.lower()
        for k, v in self.trailers:
            if k.lower() == name:
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %d bytes>" % (self.status, self.headers, len(self.body))


class Closed(Exception):
    """The peer closed the connection before a full response arrived."""


class RawConn:
    """A client TCP connection with a read buffer and an HTTP/1.1 response reader."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            data = self.sock.recv(256 * 1024)
        except ConnectionResetError:
            data = b""
        if not data:
            raise Closed("connection closed with %d unread bytes: %r" % (len(self.buf), bytes(self.buf[:200])))
        self.buf += data

    def _read_until(self, sep):
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(sep)])
                del self.buf[: i + len(sep)]
                return out
            start = max(0, len(self.buf) - len(sep) + 1)
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self):
        head = self._read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        r = Response()
        r.raw_head = head
        first = lines[0].decode("latin-1").split(" ", 2)
        r.version = first[0]
        r.status = int(first[1])
        r.reason = first[2] if len(first) > 2 else ""
        for line in lines[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            r.headers.append((k, v.strip()))
        return r

    def read_response(self, method="GET"):
        """Read one final response (1xx are skipped and noted in .interim)."""
        interim = []
        while True:
            r = self.read_head()
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r.status)
                continue
            break
        r.interim = interim
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        if method == "CONNECT" and 200 <= r.status < 300:
            return r
        if te:
            assert te == "chunked", "proxy sent transfer-encoding %r" % te
            r.chunked = True
            body = bytearray()
            while True:
                line = self._read_until(b"\r\n")[:-2]
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                body += self._read_exact(size)
                assert self._read_exact(2) == b"\r\n"
            while True:
                line = self._read_until(b"\r\n")[:-2]
                if not line:
                    break
                k, _, v = line.decode("latin-1").partition(":")
                r.trailers.append((k, v.strip()))
            r.body = bytes(body)
        elif cl is not None:
            r.body = self._read_exact(int(cl))
        else:
            r.body = self.read_until_close()
        return r

    def read_until_close(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        out = bytearray(self.buf)
        self.buf.clear()
        while True:
            try:
                data = self.sock.recv(256 * 1024)
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
        return bytes(out)

    def is_closed(self, timeout=2.0):
        """True if the peer closes (EOF or reset) within `timeout` seconds.

        Any bytes that arrive meanwhile are appended to the buffer."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                return True
            self.buf += data


def request_bytes(method, target, headers=(), body=b"", version="HTTP/1.1"):
    """Build a request; `headers` are (name, value) pairs sent verbatim."""
    lines = ["%s %s %s" % (method, target, version)]
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def slow_factor():
    """Latency thresholds are multiplied by this (2 under SLUICE_SLOW=1, e.g. ASan builds)."""
    return 2.0 if os.environ.get("SLUICE_SLOW") else 1.0


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def clean_env():
    """The environment without proxy variables, so clients use only what the test says."""
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"):
            del env[k]
    return env


def curl(proxy_url, *args, timeout=60, check=False, input=None):
    """Run curl through the proxy; returns CompletedProcess with bytes output."""
    cmd = ["curl", "-sS", "--proxy", proxy_url, "--max-time", str(timeout)] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout + 10, env=clean_env(), check=check, input=input)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
