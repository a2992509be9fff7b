"""secretlint (npm) with its recommended preset, for the side-by-side in
bench/scan/run.py: installed into bench/scan/node_modules on first use
(versions pinned in bench/scan/package.json), run over a directory."""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "node_modules", ".bin", "secretlint")
CONFIG = '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}'
# --format unix: "PATH:LINE:COL: [messageId] message [Error/preset > rule-id]"
LINE = re.compile(r"^(.*?):\d+:\d+: \[[^\]]*\] .* \[[^\]/]*/(?:[^\]>]*> )?([^\]]+)\]$")


def ensure_installed():
    """Path of the secretlint executable, running `npm install` here if needed."""
    if not os.access(BIN, os.X_OK):
        if not shutil.which("npm"):
            raise SystemExit("secretlint is not installed and npm is missing")
        print("[bench] installing secretlint into %s" % HERE, file=sys.stderr, flush=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                       check=True)
    return BIN


def version():
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    return p.stdout.strip()


def scan_dir(directory):
    """{path: [rule id, ...]} for every file under directory with a finding."""
    p = subprocess.run([BIN, "--no-color", "--no-terminalLink", "--no-gitignore",
                        "--format", "unix", "--secretlintrcJSON", CONFIG,
                        os.path.join(directory, "**", "*")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode not in (0, 1):
        raise RuntimeError("secretlint exit %d: %s" % (p.returncode, p.stderr[-2000:]))
    out = {}
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out
