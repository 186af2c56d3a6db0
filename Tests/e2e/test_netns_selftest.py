"""Self-test of the netns scaffolding, with plain Python HTTP servers only.

It proves the test network behaves like devices behind real firewalls before
any Backchannel test relies on it:

  (a) a site can reach the hub namespace ("inet") and gets replies back;
  (b) inet cannot open a connection into a site (inbound NEW is dropped);
  (c) inside a site, loopback connections work;
  (d) with the firewall removed the same inbound connection succeeds, so it is
      the firewall, not a missing route, that blocks it;
  and with two sites, neither can accept from the other while both reach inet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import netns

PORT = 8080
# A firewall drops the SYN silently, so a blocked connect ends in a timeout.
BLOCKED_TIMEOUT = 1.5


def start_server(topo: netns.Topology, name: str) -> subprocess.Popen:
    """Serve a directory whose whoami.txt names the namespace, on PORT in
    `name`; return once it accepts connections (on its own loopback)."""
    www = topo.artifacts / f"www-{name}"
    www.mkdir(parents=True, exist_ok=True)
    (www / "whoami.txt").write_text(name)
    proc = topo.popen(name, [sys.executable, "-u", "-m", "http.server", str(PORT),
                             "--bind", "0.0.0.0", "--directory", str(www)],
                      log_name="http-server")
    topo.wait_tcp(name, "127.0.0.1", PORT, timeout=15, proc=proc)
    return proc


def whoami(topo: netns.Topology, client: str, host: str) -> str:
    """GET /whoami.txt from `client` to host:PORT; return the body."""
    status, body = topo.http_get(client, f"http://{host}:{PORT}/whoami.txt")
    assert status == 200
    return body.decode()


def test_single_site_firewall(topology: netns.Topology):
    topo = topology
    inet_ip, site_ip = topo.addr("inet"), topo.addr("site")
    # The helpers agree with what the kernel has configured.
    assert netns.addr(topo.ns("site")) == site_ip
    assert netns.addr(topo.ns("inet")) == inet_ip

    # The firewall is really installed in the site, and only there.
    rules = topo.firewall_rules("site")
    assert "-P INPUT DROP" in rules, rules
    assert "--ctstate RELATED,ESTABLISHED -j ACCEPT" in rules, rules
    assert "-i lo -j ACCEPT" in rules, rules
    assert not netns.firewall_active(topo.ns("inet"))

    start_server(topo, "inet")
    start_server(topo, "site")  # (c) its readiness check connects over site's loopback

    # (a) outbound from the site works, and the replies come back in.
    assert whoami(topo, "site", inet_ip) == "inet"

    # (b) inbound NEW from inet into the site is dropped: silence, not a RST.
    assert topo.tcp_probe("inet", site_ip, PORT, timeout=BLOCKED_TIMEOUT) == "timeout"
    assert topo.tcp_connect_fails("inet", site_ip, PORT, timeout=BLOCKED_TIMEOUT)
    with pytest.raises(netns.NetnsError):
        topo.http_get("inet", f"http://{site_ip}:{PORT}/whoami.txt", timeout=BLOCKED_TIMEOUT)

    # (c) loopback inside the site is allowed.
    assert whoami(topo, "site", "127.0.0.1") == "site"

    # (d) it is the firewall that blocks: without it, the same connect succeeds.
    topo.remove_site_firewall("site")
    assert not topo.firewall_active("site")
    assert not topo.tcp_connect_fails("inet", site_ip, PORT, timeout=5)
    assert whoami(topo, "inet", site_ip) == "site"

    # ...and putting it back blocks again (install_site_firewall is re-runnable).
    topo.install_site_firewall("site")
    assert topo.firewall_active("site")
    assert topo.tcp_probe("inet", site_ip, PORT, timeout=BLOCKED_TIMEOUT) == "timeout"
    assert whoami(topo, "site", inet_ip) == "inet"


def test_two_sites_cannot_reach_each_other(two_sites: netns.Topology):
    topo = two_sites
    a_ip, b_ip = topo.addr("siteA"), topo.addr("siteB")
    assert a_ip != b_ip
    for name in ("inet", "siteA", "siteB"):
        start_server(topo, name)

    # Both sites reach inet, on either of inet's link addresses.
    for site in ("siteA", "siteB"):
        assert whoami(topo, site, topo.addr("inet", toward=site)) == "inet"
        assert whoami(topo, site, topo.addr("inet", toward="siteA")) == "inet"

    # Neither site accepts a connection from the other.
    assert topo.tcp_probe("siteB", a_ip, PORT, timeout=BLOCKED_TIMEOUT) == "timeout"
    assert topo.tcp_probe("siteA", b_ip, PORT, timeout=BLOCKED_TIMEOUT) == "timeout"

    # The path siteB -> inet -> siteA is routed: only siteA's firewall blocked it.
    topo.remove_site_firewall("siteA")
    assert whoami(topo, "siteB", a_ip) == "siteA"
    # siteB is still protected.
    assert topo.tcp_probe("siteA", b_ip, PORT, timeout=BLOCKED_TIMEOUT) == "timeout"


def test_cleanup_after_failure_kills_processes_and_namespaces(netns_ready, artifacts: Path):
    """__exit__ on an exception kills what ran inside and deletes the namespaces."""
    with pytest.raises(RuntimeError, match="boom"):
        with netns.Topology(sites=["site"], artifacts=artifacts) as topo:
            names = [topo.ns("inet"), topo.ns("site")]
            # A process that would outlive the test if nobody killed it.
            sleeper = topo.popen("site", ["sleep", "600"], log_name="sleeper")
            assert set(names) <= set(netns.list_namespaces())
            raise RuntimeError("boom")
    assert sleeper.poll() is not None
    assert not set(names) & set(netns.list_namespaces())


def test_cleanup_stale_removes_namespaces_of_dead_runs(netns_ready):
    """A bc<pid>- namespace whose pid is gone is removed; a live one is kept."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid no longer exists (barring immediate reuse)
    stale, live = f"bc{dead.pid}-9-site", f"bc{os.getpid()}-9-live"
    try:
        for ns in (stale, live):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        removed = netns.cleanup_stale()
        assert stale in removed
        assert live not in removed
        present = netns.list_namespaces()
        assert stale not in present and live in present
    finally:
        for ns in (stale, live):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
