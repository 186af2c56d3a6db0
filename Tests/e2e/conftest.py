"""Shared fixtures for the end-to-end tests under Tests/e2e.

* ``artifacts_root``: <repo>/test-artifacts (created; git-ignored).
* ``artifacts``: a fresh per-test directory below it, for logs and data.
* ``backchannel_bin``: the built `backchannel` executable (BACKCHANNEL_BIN or
  .build/debug/backchannel); skips with a clear message when absent.
* ``netns_ready``: skips (loudly) unless network namespaces + iptables work.
* ``topology`` / ``two_sites``: a running netns.Topology with one site ("site")
  or two ("siteA", "siteB"), firewalls on, torn down after the test.

Run: sudo python3 -m pytest Tests/e2e -v   (deps: scripts/install-test-deps)
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

# Make `import netns` work however pytest was invoked.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import netns  # noqa: E402

REPO_ROOT = HERE.parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the directory holding Package.swift)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def artifacts_root(repo_root: Path) -> Path:
    """<repo>/test-artifacts, created if needed."""
    path = repo_root / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def artifacts(artifacts_root: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh directory test-artifacts/e2e/<test name>/ for this test's logs.

    Emptied at the start of the test (not at the end), so the logs of a failed
    run stay there for inspection.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
    path = artifacts_root / "e2e" / safe
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="session")
def backchannel_bin(repo_root: Path) -> Path:
    """Path to the built `backchannel` executable, or skip the test.

    BACKCHANNEL_BIN wins; otherwise <repo>/.build/debug/backchannel.
    """
    env = os.environ.get("BACKCHANNEL_BIN")
    path = Path(env) if env else repo_root / ".build" / "debug" / "backchannel"
    if not (path.is_file() and os.access(path, os.X_OK)):
        line = (f"SKIP: backchannel binary not found at {path} "
                f"(run `swift build` or set BACKCHANNEL_BIN)")
        print(line, file=sys.stderr, flush=True)
        if line not in netns.SKIP_NOTES:
            netns.SKIP_NOTES.append(line)
        pytest.skip(line)
    return path.resolve()


@pytest.fixture
def netns_ready() -> None:
    """Skip (loudly) unless we are root and namespaces + iptables work."""
    netns.require_root()


@pytest.fixture
def topology(netns_ready, artifacts: Path):
    """One firewalled site: namespaces "inet" (hub/router) and "site"."""
    with netns.Topology(sites=["site"], artifacts=artifacts) as topo:
        yield topo


@pytest.fixture
def two_sites(netns_ready, artifacts: Path):
    """Two firewalled sites "siteA" and "siteB", both linked to "inet"."""
    with netns.Topology(sites=["siteA", "siteB"], artifacts=artifacts) as topo:
        yield topo


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Repeat every e2e SKIP reason at the end, so skips are never silent."""
    if netns.SKIP_NOTES:
        terminalreporter.section("e2e skipped", sep="!", yellow=True, bold=True)
        for line in netns.SKIP_NOTES:
            terminalreporter.write_line(line, yellow=True, bold=True)
