"""Fixtures: a local upstream and the real sluice binary on an ephemeral port."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sluice_harness import SANITIZER_MARKERS, Sluice, sluice_bin  # noqa: E402
from upstream import Upstream  # noqa: E402


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def sluice_factory(tmp_path, upstream):
    """start(overrides=None, upstream=...) -> running Sluice; all stopped at teardown."""
    started = []

    def start(overrides=None, name=None, up=upstream, auto_start=True):
        s = Sluice(tmp_path, up, overrides, name or "sluice%d" % len(started))
        started.append(s)
        if auto_start:
            s.start()
        return s

    yield start
    problems = []
    for s in started:
        rc = s.stop()
        err = s.stderr()
        if rc not in (0, None):
            problems.append("%s exited with %s after SIGTERM" % (s.config_path.name, rc))
        for marker in SANITIZER_MARKERS:
            if marker in err:
                i = err.index(marker)
                problems.append("%s: sanitizer report in stderr:\n%s" % (s.stderr_path.name, err[max(0, i - 200): i + 3000]))
                break
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def proxy(sluice_factory):
    """sluice with the default test config, routing upstream.test to the upstream."""
    return sluice_factory()


def pytest_sessionstart(session):
    b = sluice_bin()
    if not os.access(b, os.X_OK):
        # Fail loudly rather than skip: a missing binary must not look like a pass.
        print("\nsluice binary not found at %s (build it or set SLUICE_BIN)" % b, file=sys.stderr)
