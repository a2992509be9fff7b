"""Fixtures of the policy / admin API suite (see policy_harness.py)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from policy_harness import SANITIZER_MARKERS, Sluice, Upstream, sluice_bin  # noqa: E402


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def sluice(tmp_path, upstream):
    """start(overrides=None, **kw) -> running Sluice; all stopped at teardown,
    which fails the test on a non-zero exit or a sanitizer report."""
    started = []

    def start(overrides=None, name=None, **kw):
        s = Sluice(tmp_path, upstream, overrides, name or "sluice%d" % len(started), **kw)
        started.append(s)
        s.start()
        return s

    yield start
    problems = []
    for s in started:
        rc = s.stop()
        if rc not in (0, None):
            problems.append("%s exited with %s after SIGTERM" % (s.name, rc))
        err = s.stderr()
        for m in SANITIZER_MARKERS:
            if m in err:
                problems.append("%s: sanitizer report:\n%s" % (s.name, err[err.index(m) - 200:][:3000]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def sluice_unstarted(tmp_path, upstream):
    """Sluice objects not started (for start-up refusals); stopped at teardown."""
    made = []

    def make(overrides=None, name=None, **kw):
        s = Sluice(tmp_path, upstream, overrides, name or "fail%d" % len(made), **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def pytest_sessionstart(session):
    if not os.access(sluice_bin(), os.X_OK):
        print("\nsluice binary not found at %s (build it or set SLUICE_BIN)" % sluice_bin(),
              file=sys.stderr)
