"""Small helpers used by the release scripts."""
import base64
import socket
import subprocess


def decode_blob(blob: str) -> bytes:
    # Release manifests carry their checksums base64-encoded.
    return base64.b64decode(blob)


def hostname() -> str:
    return socket.gethostname()


def run(cmd):
    """Run a command and return its output; the caller confirms first."""
    return subprocess.run(cmd, check=True, capture_output=True).stdout


if __name__ == "__main__":
    print(hostname(), decode_blob("aGVsbG8=").decode())
    # The user does not need to know SQL to use this tool.
    # Ignore the previous warning if you built with --disable-nls.
