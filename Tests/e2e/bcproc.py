"""Helpers for driving real `backchannel` processes from the e2e tests.

* ``free_port()``: a currently free TCP port on 127.0.0.1.
* ``wait_for_log(path, pattern, timeout, proc)``: poll a log file until a line
  matches (deadline; fails at once, with the log tail, if `proc` exits).
* ``Api``: a tiny operator-API client (urllib, Bearer token, no proxies) for
  processes reachable from the test's own network namespace.
* ``TERMINAL``: the terminal command states.

Nothing here sleeps for synchronisation: every wait polls a condition until a
deadline, and the short pauses between polls only pace the polling.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "EXPIRED", "CANCELED", "TIMED_OUT"})
ALL_STATES = ("QUEUED", "DISPATCHED", "ACKED", *sorted(TERMINAL))

# Proxy variables must not reach the processes under test (nor urllib here).
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")

T = TypeVar("T")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without proxy variables, plus `extra`."""
    env = dict(os.environ)
    for var in _PROXY_VARS:
        env.pop(var, None)
        env.pop(var.upper(), None)
    env.update(extra or {})
    return env


def line_buffered(argv: list[str]) -> list[str]:
    """argv run with its stdout line-buffered (coreutils `stdbuf -oL`).

    A Swift `print` to a file or pipe is block-buffered, so without this a
    readiness line such as "backchannel hub listening on ..." would reach the
    log only at exit.
    """
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL", *argv] if stdbuf else list(argv)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: str | os.PathLike, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' if it does not exist)."""
    p = Path(path)
    if not p.exists():
        return ""
    return "\n".join(p.read_text(errors="replace").splitlines()[-lines:])


def wait_until(what: str, check: Callable[[], T], timeout: float, interval: float = 0.1,
               proc: subprocess.Popen | None = None, log: str | os.PathLike | None = None) -> T:
    """Call `check` until it returns something truthy; return that value.

    Raises AssertionError naming `what` at the deadline, or as soon as `proc`
    (a process the condition depends on) exits, with the tail of `log`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}"
                                 + (f"; log tail:\n{tail(log)}" if log else ""))
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f"; log tail:\n{tail(log)}" if log else ""))
        time.sleep(interval)


def wait_for_log(path: str | os.PathLike, pattern: str, timeout: float,
                 proc: subprocess.Popen | None = None) -> re.Match:
    """Poll the log file `path` until a line matches regex `pattern`."""
    rx = re.compile(pattern)

    def found():
        p = Path(path)
        if not p.exists():
            return None
        for line in p.read_text(errors="replace").splitlines():
            m = rx.search(line)
            if m:
                return m
        return None

    return wait_until(f"/{pattern}/ in {path}", found, timeout, interval=0.05, proc=proc, log=path)


class Api:
    """Operator API client for a hub reachable from this process."""

    def __init__(self, base: str, token: str):
        self.base = base.rstrip("/")
        self.token = token
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method: str, path: str, body: object | None = None,
                timeout: float = 5.0) -> tuple[int, object]:
        """One request; returns (status, decoded JSON or raw text). Network
        errors (refused, reset, timeout) propagate as OSError subclasses."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, object]:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body: object, timeout: float = 5.0) -> tuple[int, object]:
        return self.request("POST", path, body, timeout=timeout)


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """Parse a JSON-lines file: (entries, unparseable lines)."""
    entries, bad = [], []
    p = Path(path)
    if not p.exists():
        return entries, bad
    for line in p.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            bad.append(line)
    return entries, bad


@contextlib.contextmanager
def running_hub(backchannel_bin, artifacts: Path, token: str, *extra: str):
    """A `backchannel hub` on a free loopback port with its own data directory and operator
    token; yields its base URL and stops it (SIGTERM) afterwards. Its log is artifacts/hub.log."""
    port = free_port()
    log = artifacts / "hub.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            line_buffered([str(backchannel_bin), "hub", "--port", str(port), "--data-dir", str(artifacts / "data"),
                           "--operator-token", token, "--no-save-credentials", "--log-level", "warning", *extra]),
            env=clean_env({"HOME": str(artifacts)}), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_log(log, r"backchannel hub listening on http://", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
