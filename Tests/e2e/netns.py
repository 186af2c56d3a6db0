"""Real-firewall test networks built from Linux network namespaces.

A test network looks like this (one /24 per site, k = 1, 2, ...)::

        site "siteA"                 "inet"                  site "siteB"
    +----------------+      +----------------------+      +----------------+
    | uplink         |------| to-siteA    to-siteB |------|         uplink |
    | 10.201.1.2/24  | veth | 10.201.1.1  10.201.2.1| veth | 10.201.2.2/24  |
    | default via .1 |      |   ip_forward = 1      |      | default via .1 |
    | FIREWALL       |      |   (runs the hub)      |      | FIREWALL       |
    +----------------+      +----------------------+      +----------------+

* "inet" plays the Internet: a router that also hosts the hub. IP forwarding is
  on, so site-to-site traffic is *routable*; what stops it is the firewall.
* Each site has a stateful firewall (``install_site_firewall``): inbound NEW
  connections are dropped, ESTABLISHED/RELATED and loopback are accepted,
  outbound is unrestricted. That is the "device behind a firewall" that
  Backchannel is built for.
* Every namespace is named ``bc<pid>-<n>-<name>`` (n counts topologies within
  one process) so parallel runs never collide, and so ``cleanup_stale()`` can
  tell which leftovers belong to runs whose process is gone.
* The veth pairs are created directly inside the namespaces (never in the root
  namespace), so interface names are short and fixed: ``uplink`` in a site,
  ``to-<site>`` in inet.

All traffic stays inside namespaces this module created; nothing is routed to
the host or beyond.

Usage::

    with Topology(sites=["site"], artifacts=tmp_dir) as topo:
        hub = topo.popen("inet", ["python3", "-m", "http.server", "8080"], name="hub")
        topo.wait_tcp("inet", "127.0.0.1", 8080, timeout=10, proc=hub)
        assert topo.http_get("site", f"http://{topo.addr('inet')}:8080/")[0] == 200

Functions take *full* namespace names (``topo.ns("site")``); the ``Topology``
methods of the same names take the short names ("inet", "site") instead.
Everything needs root; tests call ``require_root()`` first so that they skip,
loudly, elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

# Name of the hub / router namespace (short name).
INET = "inet"
# Every namespace this module creates starts with "bc<pid>-".
_NS_RE = re.compile(r"^bc(\d+)-")
# Site k gets 10.201.k.0/24: inet side .1, site side .2.
_SUBNET_FMT = "10.201.{k}.{host}"

# Environment variables that must not leak into namespace processes: no proxy
# is reachable from inside a namespace, and a proxy would also bypass the very
# firewall under test.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")

# Long-running processes started by popen(): (namespace, Popen). Tracked so
# that Topology.__exit__ (and kill_tracked) can stop them.
_TRACKED: list[tuple[str, subprocess.Popen]] = []

# Reasons recorded by require_root() when it skipped; conftest prints them in
# the terminal summary so a skipped e2e run is never silent.
SKIP_NOTES: list[str] = []

_topology_counter = 0


class NetnsError(RuntimeError):
    """A command run in (or about) a namespace failed."""


# --------------------------------------------------------------------------
# Environment checks
# --------------------------------------------------------------------------

_root_check: str | None = None  # None = not checked yet, "" = OK, else reason


def _namespace_problem() -> str:
    """Return "" if namespaces + iptables are usable here, else the reason."""
    if os.geteuid() != 0:
        return f"not running as root (euid {os.geteuid()})"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found; run scripts/install-test-deps"
    probe = f"bc{os.getpid()}-probe"
    try:
        _host(["ip", "netns", "add", probe])
        try:
            # iptables must work inside a namespace (needs netfilter in-kernel).
            run(probe, ["iptables", "-w", "-S", "INPUT"], timeout=15)
        finally:
            _host(["ip", "netns", "del", probe], check=False)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces unavailable: {exc}"
    return ""


def require_root() -> None:
    """Skip the calling test (loudly) unless namespaces + iptables work here.

    Prints ``SKIP: network-namespace firewall tests need root (...)`` to stderr
    and records it in SKIP_NOTES (printed in pytest's terminal summary).
    """
    global _root_check
    import pytest  # imported lazily: the library itself is usable without pytest

    if _root_check is None:
        _root_check = _namespace_problem()
    if _root_check:
        line = f"SKIP: network-namespace firewall tests need root ({_root_check})"
        print(line, file=sys.stderr, flush=True)
        if line not in SKIP_NOTES:
            SKIP_NOTES.append(line)
        pytest.skip(line)


# --------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------

def _clean_env(env: dict | None) -> dict:
    """os.environ (or `env`) without proxy variables."""
    base = dict(os.environ if env is None else env)
    for var in _PROXY_VARS:
        base.pop(var, None)
        base.pop(var.upper(), None)
    return base


def _host(argv: Sequence[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command in the host (root) namespace, capturing text output."""
    cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} -> exit {cp.returncode}: {cp.stderr.strip()}")
    return cp


def run(ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 30,
        env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run argv inside namespace `ns` to completion; text output is captured.

    Raises NetnsError (with stderr) on a non-zero exit when check=True, and
    subprocess.TimeoutExpired after `timeout` seconds. Extra keyword arguments
    go to subprocess.run.
    """
    cmd = ["ip", "netns", "exec", ns, *argv]
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    cp = subprocess.run(cmd, timeout=timeout, env=_clean_env(env), **kw)
    if check and cp.returncode != 0:
        err = cp.stderr.strip() if isinstance(cp.stderr, str) else cp.stderr
        raise NetnsError(f"[{ns}] {' '.join(map(str, argv))} -> exit {cp.returncode}: {err}")
    return cp


def popen(ns: str, argv: Sequence[str], artifacts: str | os.PathLike, *,
          name: str | None = None, env: dict | None = None, cwd: str | None = None,
          **kw) -> subprocess.Popen:
    """Start a long-running argv inside `ns`; stdout+stderr go to a log file.

    The log is ``<artifacts>/<name>.log`` (name defaults to
    "<ns>-<basename of argv[0]>") and is available as ``proc.log_path``. The process gets its own
    process group and is tracked: kill_tracked()/Topology.__exit__ stop it.
    """
    artifacts = Path(artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    name = name or f"{ns}-{Path(argv[0]).name}"
    log_path = artifacts / f"{name}.log"
    log = open(log_path, "ab")
    try:
        # `ip netns exec` execs argv in place, so proc.pid is argv's own pid.
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=_clean_env(env), cwd=cwd, start_new_session=True, **kw)
    finally:
        log.close()  # the child holds its own copy of the descriptor
    proc.log_path = log_path  # type: ignore[attr-defined]
    proc.netns = ns  # type: ignore[attr-defined]
    _TRACKED.append((ns, proc))
    return proc


def stop(proc: subprocess.Popen, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
    """Signal proc's process group with `sig`, SIGKILL it if still alive after
    `timeout`, reap it and return its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    return proc.returncode


def kill_tracked(namespaces: Iterable[str] | None = None, timeout: float = 5.0) -> None:
    """Stop every tracked popen() process (only those in `namespaces` if given)."""
    wanted = None if namespaces is None else set(namespaces)
    for entry in list(_TRACKED):
        ns, proc = entry
        if wanted is None or ns in wanted:
            try:
                stop(proc, timeout=timeout)
            finally:
                _TRACKED.remove(entry)


def log_tail(proc: subprocess.Popen, lines: int = 30) -> str:
    """The last `lines` lines of a popen() process's log (for failure messages)."""
    path = getattr(proc, "log_path", None)
    if path is None or not Path(path).exists():
        return ""
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------
# Addresses and probes
# --------------------------------------------------------------------------

def addr(ns: str) -> str:
    """The IPv4 address of `ns` on its (first) link, e.g. "10.201.1.2".

    For a site that is its only address. For inet it is its address on the
    first site's link; every inet address is reachable from every site via the
    sites' default routes.
    """
    out = run(ns, ["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout
    for line in out.splitlines():
        m = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", line)
        if m:
            return m.group(1)
    raise NetnsError(f"[{ns}] has no global IPv4 address")


# Runs inside the namespace: one TCP connect attempt, prints the outcome.
_TCP_PROBE = r"""
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    socket.create_connection((host, port), timeout=timeout).close()
    print("ok")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error:" + (e.strerror or str(e)))
"""

# Runs inside the namespace: one HTTP GET (no proxies), prints status, then body.
_HTTP_PROBE = r"""
import json, sys, urllib.request, urllib.error
url, timeout = sys.argv[1], float(sys.argv[2])
headers = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
sys.stdout.write(str(status) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


def tcp_probe(ns: str, host: str, port: int, timeout: float = 2.0) -> str:
    """One TCP connect from `ns` to host:port. Returns "ok", "timeout" (no
    answer: e.g. SYN dropped by a firewall), "refused" (RST: reachable but
    nothing listening) or "error:<reason>" (e.g. no route)."""
    cp = run(ns, [sys.executable, "-c", _TCP_PROBE, host, str(port), str(timeout)],
             timeout=timeout + 15)
    return cp.stdout.strip()


def tcp_connect_fails(ns: str, host: str, port: int, timeout: float = 2.0) -> bool:
    """True iff a TCP connect from `ns` to host:port does not succeed within
    `timeout` seconds (for whatever reason: dropped, refused, unreachable)."""
    return tcp_probe(ns, host, port, timeout) != "ok"


def wait_tcp(ns: str, host: str, port: int, timeout: float = 10.0,
             proc: subprocess.Popen | None = None, interval: float = 0.05) -> None:
    """Poll until a TCP connect from `ns` to host:port succeeds.

    Raises TimeoutError at the deadline; if `proc` (the server being waited
    for) exits first, raises NetnsError with the tail of its log at once.
    `interval` is only the pause between attempts, never a synchronisation.
    """
    deadline = time.monotonic() + timeout
    last = "not tried"
    while True:
        if proc is not None and proc.poll() is not None:
            raise NetnsError(f"process exited ({proc.returncode}) before {host}:{port} "
                             f"accepted in {ns}; log tail:\n{log_tail(proc)}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{host}:{port} not reachable from {ns} within "
                               f"{timeout}s (last attempt: {last})")
        last = tcp_probe(ns, host, port, timeout=min(1.0, max(remaining, 0.1)))
        if last == "ok":
            return
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))


def http_get(ns: str, url: str, timeout: float = 5.0,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """HTTP GET `url` from inside `ns` (no proxies), with optional extra
    request `headers` (e.g. Authorization). Returns (status, body); raises
    NetnsError if no HTTP response arrives within `timeout`."""
    import json
    cp = run(ns, [sys.executable, "-c", _HTTP_PROBE, url, str(timeout), json.dumps(headers or {})],
             timeout=timeout + 15, check=False, text=False)
    if cp.returncode != 0:
        err = cp.stderr.decode(errors="replace").strip().splitlines()
        raise NetnsError(f"[{ns}] GET {url} failed: {err[-1] if err else cp.returncode}")
    head, _, body = cp.stdout.partition(b"\n")
    return int(head), body


# --------------------------------------------------------------------------
# The site firewall
# --------------------------------------------------------------------------

def install_site_firewall(ns: str) -> None:
    """Make `ns` a device behind a stateful firewall, for IPv4 and IPv6:
    INPUT policy DROP, accept loopback and ESTABLISHED,RELATED (replies to
    our own outbound connections); FORWARD DROP; OUTPUT ACCEPT."""
    for tool in ("iptables", "ip6tables"):
        if tool == "ip6tables" and shutil.which(tool) is None:
            continue
        ipt = [tool, "-w"]
        run(ns, [*ipt, "-F", "INPUT"])
        run(ns, [*ipt, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])
        run(ns, [*ipt, "-A", "INPUT", "-m", "conntrack",
                 "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"])
        if tool == "ip6tables":
            # IPv6 needs neighbour discovery to work at all on the link.
            run(ns, [*ipt, "-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"])
        run(ns, [*ipt, "-P", "INPUT", "DROP"])
        run(ns, [*ipt, "-P", "FORWARD", "DROP"])
        run(ns, [*ipt, "-P", "OUTPUT", "ACCEPT"])


def remove_site_firewall(ns: str) -> None:
    """Open `ns` completely: flush INPUT/FORWARD and set every policy ACCEPT."""
    for tool in ("iptables", "ip6tables"):
        if tool == "ip6tables" and shutil.which(tool) is None:
            continue
        for chain in ("INPUT", "FORWARD", "OUTPUT"):
            run(ns, [tool, "-w", "-P", chain, "ACCEPT"])
        run(ns, [tool, "-w", "-F", "INPUT"])
        run(ns, [tool, "-w", "-F", "FORWARD"])


def firewall_rules(ns: str) -> str:
    """The IPv4 filter rules of `ns` as printed by `iptables -S`."""
    return run(ns, ["iptables", "-w", "-S"]).stdout


def firewall_active(ns: str) -> bool:
    """True iff `ns` has the site firewall (INPUT policy DROP + conntrack rule)."""
    rules = firewall_rules(ns)
    return "-P INPUT DROP" in rules and "ESTABLISHED" in rules


# --------------------------------------------------------------------------
# Namespace lifecycle
# --------------------------------------------------------------------------

def list_namespaces() -> list[str]:
    """Names of all network namespaces on the host."""
    out = _host(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_ns_pids(ns: str) -> None:
    """SIGKILL every process still living in `ns` (untracked ones included)."""
    out = _host(["ip", "netns", "pids", ns], check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def delete_namespace(ns: str) -> None:
    """Kill whatever runs in `ns`, then delete it (its veth ends go with it)."""
    kill_tracked([ns])
    _kill_ns_pids(ns)
    _host(["ip", "netns", "del", ns], check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete "bc<pid>-*" namespaces whose creating process no longer exists
    (left by aborted runs); returns the names deleted."""
    removed = []
    for ns in list_namespaces():
        m = _NS_RE.match(ns)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            delete_namespace(ns)
            removed.append(ns)
    return removed


class Topology:
    """Context manager: an "inet" hub/router namespace plus firewalled sites.

    Topology(sites=["site"], artifacts=dir, firewall=True)

    * ``ns(name)``: full namespace name of "inet" or a site.
    * ``addr(name)``: that namespace's IPv4 address on its link (inet: on the
      first site's link). ``addr("inet", toward="siteB")`` picks the link.
    * ``run/popen/wait_tcp/tcp_probe/tcp_connect_fails/http_get``: as the
      module functions, with short names; popen logs go to `artifacts`.
    * ``install_site_firewall/remove_site_firewall/firewall_rules(site)``.

    On exit (also after a failure) every process started in the namespaces is
    killed and the namespaces are deleted.
    """

    def __init__(self, sites: Sequence[str] = ("site",), artifacts: str | os.PathLike | None = None,
                 firewall: bool = True):
        global _topology_counter
        if INET in sites:
            raise ValueError(f"{INET!r} is the hub namespace, not a site name")
        if len(set(sites)) != len(sites) or not 1 <= len(sites) <= 254:
            raise ValueError(f"sites must be 1..254 distinct names, got {sites!r}")
        for s in sites:
            if not re.fullmatch(r"[A-Za-z0-9_]{1,12}", s):
                raise ValueError(f"site name {s!r}: use 1-12 letters/digits/_")
        _topology_counter += 1
        self.prefix = f"bc{os.getpid()}-{_topology_counter}-"
        self.sites = list(sites)
        self.firewall = firewall
        self.artifacts = Path(artifacts) if artifacts else Path("test-artifacts") / "netns"
        # short name -> full namespace name
        self._ns = {name: self.prefix + name for name in [INET, *self.sites]}
        # site -> (inet-side address, site-side address)
        self._link = {s: (_SUBNET_FMT.format(k=k, host=1), _SUBNET_FMT.format(k=k, host=2))
                      for k, s in enumerate(self.sites, start=1)}

    # --- lifecycle -------------------------------------------------------

    def __enter__(self) -> "Topology":
        require_root()
        cleanup_stale()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _build(self) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        for full in self._ns.values():
            _host(["ip", "netns", "add", full])
            run(full, ["ip", "link", "set", "lo", "up"])
        inet = self._ns[INET]
        # inet routes between sites: without the site firewalls, any site
        # could reach any other.
        run(inet, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for site in self.sites:
            site_ns = self._ns[site]
            inet_ip, site_ip = self._link[site]
            inet_if = f"to-{site}"
            # Create the pair inside inet with its peer directly in the site,
            # so the names never exist in (or collide in) the root namespace.
            _host(["ip", "-n", inet, "link", "add", inet_if, "type", "veth",
                   "peer", "name", "uplink", "netns", site_ns])
            run(inet, ["ip", "addr", "add", f"{inet_ip}/24", "dev", inet_if])
            run(inet, ["ip", "link", "set", inet_if, "up"])
            run(site_ns, ["ip", "addr", "add", f"{site_ip}/24", "dev", "uplink"])
            run(site_ns, ["ip", "link", "set", "uplink", "up"])
            run(site_ns, ["ip", "route", "add", "default", "via", inet_ip])
            if self.firewall:
                install_site_firewall(site_ns)

    def close(self) -> None:
        """Kill every process in our namespaces and delete them (idempotent)."""
        kill_tracked(self._ns.values())
        for full in self._ns.values():
            if full in list_namespaces():
                delete_namespace(full)

    # --- names and addresses --------------------------------------------

    def ns(self, name: str) -> str:
        """Full namespace name for "inet" or a site name."""
        try:
            return self._ns[name]
        except KeyError:
            raise KeyError(f"unknown namespace {name!r}; have {list(self._ns)}") from None

    def addr(self, name: str, toward: str | None = None) -> str:
        """IPv4 address of `name` on its link. For "inet", `toward` selects the
        link to that site (default: the first site's link)."""
        if name == INET:
            return self._link[toward or self.sites[0]][0]
        self.ns(name)  # validate
        return self._link[name][1]

    # --- delegates taking short names -------------------------------------

    def run(self, name: str, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        return run(self.ns(name), argv, **kw)

    def popen(self, name: str, argv: Sequence[str], *, log_name: str | None = None,
              **kw) -> subprocess.Popen:
        """popen() in `name`; logs to <artifacts>/<name>-<log_name>.log."""
        stem = f"{name}-{log_name or Path(argv[0]).name}"
        return popen(self.ns(name), argv, self.artifacts, name=stem, **kw)

    def wait_tcp(self, name: str, host: str, port: int, timeout: float = 10.0, **kw) -> None:
        wait_tcp(self.ns(name), host, port, timeout, **kw)

    def tcp_probe(self, name: str, host: str, port: int, timeout: float = 2.0) -> str:
        return tcp_probe(self.ns(name), host, port, timeout)

    def tcp_connect_fails(self, name: str, host: str, port: int, timeout: float = 2.0) -> bool:
        return tcp_connect_fails(self.ns(name), host, port, timeout)

    def http_get(self, name: str, url: str, timeout: float = 5.0,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return http_get(self.ns(name), url, timeout, headers=headers)

    def install_site_firewall(self, site: str) -> None:
        install_site_firewall(self.ns(site))

    def remove_site_firewall(self, site: str) -> None:
        remove_site_firewall(self.ns(site))

    def firewall_rules(self, site: str) -> str:
        return firewall_rules(self.ns(site))

    def firewall_active(self, site: str) -> bool:
        return firewall_active(self.ns(site))
