"""Rendezvous through real firewalls: two devices, each behind its own firewall,
talk through the hub.

    siteA (master-001)  --poll-->  inet (hub)  <--poll--  siteB (meter-b-001, meter-b-002)
         FIREWALL: INPUT DROP                               FIREWALL: INPUT DROP

Checks:
  (a) both site firewalls are active, and a direct connection from siteA to a
      service in siteB fails (the SYN is dropped), though inet routes between them;
  (b) with a rendezvous rule, device A (master-001) obtains a reading from device B
      (meter-b-001) through the hub: the operator asks A to `gather`, A sends a
      `read` request to B in its poll, B runs it once, and B's result comes back to A;
  (c) a pair without a rule (master-001 -> meter-b-002) is REJECTED with
      `not_authorized`, and nothing is queued for meter-b-002.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import netns
from bcproc import line_buffered, read_jsonl, wait_for_log

PORT = 8080
B_SERVICE_PORT = 8082
TOKEN = "e2e-rendezvous-operator-token-0123456789"
MASTER = "master-001"
PEER = "meter-b-001"
STRANGER = "meter-b-002"


def cli(topo: netns.Topology, bin_: Path, *argv: str, timeout: float = 90, ok: bool = True) -> dict | list:
    """Run a `backchannel` client command with --json in inet; return its JSON.

    `send --wait` exits non-zero when the command ends in failure; pass ok=False then.
    """
    cp = topo.run("inet", [str(bin_), *argv, "--json", "--hub", f"http://127.0.0.1:{PORT}", "--token", TOKEN],
                  timeout=timeout, check=False)
    assert cp.stdout.strip(), f"{argv} printed nothing (exit {cp.returncode}): {cp.stderr}"
    assert (cp.returncode == 0) == ok, f"{argv} exit {cp.returncode}: {cp.stdout}\n{cp.stderr}"
    return json.loads(cp.stdout)


def api_get(topo: netns.Topology, path: str):
    status, body = topo.http_get("inet", f"http://127.0.0.1:{PORT}{path}", timeout=5,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    return status, json.loads(body) if body else None


def simulate(topo: netns.Topology, bin_: Path, site: str, prefix: str, count: int, state: Path):
    inet_ip = topo.addr("inet")
    proc = topo.popen(site, line_buffered([str(bin_), "simulate", "--hub", f"http://{inet_ip}:{PORT}",
                                           "--devices", str(count), "--prefix", prefix, "--state-dir", str(state),
                                           "--token", TOKEN, "--long-poll", "20", "--interval", "5"]),
                      log_name=f"simulate-{site}", env={**os.environ, "HOME": str(topo.artifacts)})
    wait_for_log(proc.log_path, rf"started {count} simulated meters", timeout=30, proc=proc)
    return proc


def test_device_reads_a_peer_through_the_hub(two_sites: netns.Topology, backchannel_bin: Path):
    topo = two_sites
    art = topo.artifacts
    hub = topo.popen("inet", line_buffered([str(backchannel_bin), "hub", "--host", "0.0.0.0", "--port", str(PORT),
                                            "--data-dir", str(art / "hub-data"), "--operator-token", TOKEN,
                                            "--no-save-credentials", "--log-level", "warning"]),
                     log_name="hub", env={**os.environ, "HOME": str(art)})
    wait_for_log(hub.log_path, r"backchannel hub listening on http://", timeout=30, proc=hub)
    topo.wait_tcp("inet", "127.0.0.1", PORT, timeout=10, proc=hub)

    # --- (a) firewalls up; A cannot reach B directly --------------------------
    for site in ("siteA", "siteB"):
        assert topo.firewall_active(site), topo.firewall_rules(site)
    www = art / "b-www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text("meter-b")
    svc = topo.popen("siteB", [sys.executable, "-u", "-m", "http.server", str(B_SERVICE_PORT),
                               "--bind", "0.0.0.0", "--directory", str(www)], log_name="b-service")
    topo.wait_tcp("siteB", "127.0.0.1", B_SERVICE_PORT, timeout=15, proc=svc)
    b_ip = topo.addr("siteB")
    assert topo.tcp_connect_fails("siteA", b_ip, B_SERVICE_PORT, timeout=1.5), "siteA reached siteB directly"
    assert topo.tcp_probe("siteA", b_ip, B_SERVICE_PORT, timeout=1.5) == "timeout"

    # --- the devices, each polling out of its own site ------------------------
    sim_a = simulate(topo, backchannel_bin, "siteA", "master-", 1, art / "sim-a")
    sim_b = simulate(topo, backchannel_bin, "siteB", "meter-b-", 2, art / "sim-b")

    # --- (b) with a rule, A obtains B's reading through the hub ---------------
    rule = cli(topo, backchannel_bin, "rendezvous", "allow", "--from", f"device:{MASTER}",
               "--to", f"device:{PEER}", "--command", "read")
    assert rule["commands"] == ["read"], rule
    gathered = cli(topo, backchannel_bin, "send", MASTER, "gather",
                   "--args", json.dumps({"peers": [PEER], "timeout": 40}), "--wait", "--wait-timeout", "60")
    assert gathered["state"] == "SUCCEEDED", json.dumps(gathered, indent=1)
    peer = gathered["outcome"]["data"]["peers"][PEER]
    assert peer["state"] == "SUCCEEDED", peer
    for key in ("kWh", "kW", "V", "A", "PF"):
        assert key in peer["data"], f"B's reading lacks {key}: {peer}"

    # The request B ran came from A, through the hub, and ran exactly once.
    status, page = api_get(topo, f"/v1/devices/{PEER}/commands?limit=10")
    assert status == 200, page
    routed = [c for c in page["items"] if c["origin"] == f"device:{MASTER}"]
    assert len(routed) == 1 and routed[0]["name"] == "read" and routed[0]["state"] == "SUCCEEDED", page
    assert routed[0]["outcome"]["data"]["kWh"] == peer["data"]["kWh"], (routed[0], peer)
    executions, bad = read_jsonl(art / "sim-b" / "executions.jsonl")
    assert not bad, bad
    runs = [e for e in executions if e["id"] == routed[0]["id"]]
    assert len(runs) == 1 and runs[0]["device"] == PEER, runs

    # --- (c) an unauthorised pair is REJECTED ---------------------------------
    refused = cli(topo, backchannel_bin, "send", MASTER, "gather",
                  "--args", json.dumps({"peers": [STRANGER], "timeout": 40}), "--wait", "--wait-timeout", "60",
                  ok=False)
    assert refused["state"] == "FAILED", json.dumps(refused, indent=1)
    stranger = refused["outcome"]["data"]["peers"][STRANGER]
    assert stranger["state"] == "REJECTED" and stranger["code"] == "not_authorized", stranger
    status, page = api_get(topo, f"/v1/devices/{STRANGER}/commands?limit=10")
    assert status == 200 and page["items"] == [], page
    metrics = topo.http_get("inet", f"http://127.0.0.1:{PORT}/metrics", timeout=5)[1].decode()
    assert "backchannel_rendezvous_rejected_total 1" in metrics, metrics

    for proc in (hub, sim_a, sim_b):
        assert proc.poll() is None, netns.log_tail(proc)
