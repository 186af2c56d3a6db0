"""The real firewall in the loop: a device behind a stateful firewall that drops
every inbound connection still gets its commands, because it polls out.

    inet (hub, 0.0.0.0:PORT)  <---- outbound poll ----  site (simulated meter-001)
                              ---- inbound NEW  --X     (firewall: INPUT DROP)

Checks:
  (a) the site firewall is active;
  (b) a service listening in the site cannot be reached from inet (the SYN is
      dropped), while the device's own outbound connection to the hub is up;
  (c) commands submitted in inet (`backchannel send --wait`) reach the device
      and their results come back; each was executed exactly once;
  (d) the device's readings arrive at the hub (GET /v1/devices/meter-001/uplink).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import netns
from bcproc import line_buffered, read_jsonl, wait_for_log, wait_until

PORT = 8080            # hub, in inet
DEVICE_SVC_PORT = 8081  # "some service on the device", in site
TOKEN = "e2e-firewall-operator-token-0123456789"
DEVICE = "meter-001"
BLOCKED_TIMEOUT = 1.5


def api_get(topo: netns.Topology, path: str, timeout: float = 5.0):
    """GET the hub's operator API from inside inet; returns (status, JSON)."""
    status, body = topo.http_get("inet", f"http://127.0.0.1:{PORT}{path}", timeout=timeout,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode(errors="replace")


def send(topo: netns.Topology, bin_: Path, *argv: str) -> dict:
    """Run `backchannel send ... --wait --json` in inet; return the final command JSON."""
    cp = topo.run("inet", [str(bin_), "send", DEVICE, *argv, "--wait", "--wait-timeout", "60", "--json",
                           "--hub", f"http://127.0.0.1:{PORT}", "--token", TOKEN],
                  timeout=90, check=False)
    assert cp.stdout.strip(), f"send {argv} printed nothing (exit {cp.returncode}): {cp.stderr}"
    view = json.loads(cp.stdout)
    assert cp.returncode == 0, f"send {argv} exit {cp.returncode}: {json.dumps(view, indent=1)}\n{cp.stderr}"
    return view


def test_command_reaches_device_behind_firewall(topology: netns.Topology, backchannel_bin: Path):
    topo = topology
    art = topo.artifacts
    inet_ip, site_ip = topo.addr("inet"), topo.addr("site")

    # --- the hub, in inet ---------------------------------------------------
    hub = topo.popen("inet", line_buffered([str(backchannel_bin), "hub", "--host", "0.0.0.0", "--port", str(PORT),
                              "--data-dir", str(art / "hub-data"), "--operator-token", TOKEN,
                              "--no-save-credentials", "--log-level", "warning"]),
                     log_name="hub", env={**os.environ, "HOME": str(art)})
    wait_for_log(hub.log_path, r"backchannel hub listening on http://", timeout=30, proc=hub)
    topo.wait_tcp("inet", "127.0.0.1", PORT, timeout=10, proc=hub)

    # --- (a) the firewall is up in the device's namespace ------------------
    assert topo.firewall_active("site"), topo.firewall_rules("site")
    rules = topo.firewall_rules("site")
    assert "-P INPUT DROP" in rules and "--ctstate RELATED,ESTABLISHED -j ACCEPT" in rules, rules

    # --- the device, in site, polling out ----------------------------------
    sim_dir = art / "sim"
    sim = topo.popen("site", line_buffered([str(backchannel_bin), "simulate", "--hub", f"http://{inet_ip}:{PORT}",
                              "--devices", "1", "--state-dir", str(sim_dir), "--token", TOKEN,
                              "--long-poll", "20", "--interval", "1"]),
                     log_name="simulate", env={**os.environ, "HOME": str(art)})
    wait_for_log(sim.log_path, r"started 1 simulated meters", timeout=30, proc=sim)
    assert (sim_dir / DEVICE / "credentials.json").is_file()

    # --- (b) the device is unreachable inbound ------------------------------
    www = art / "device-www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "whoami.txt").write_text("device")
    svc = topo.popen("site", [sys.executable, "-u", "-m", "http.server", str(DEVICE_SVC_PORT),
                              "--bind", "0.0.0.0", "--directory", str(www)], log_name="device-service")
    # It is listening (checked over the site's own loopback)...
    topo.wait_tcp("site", "127.0.0.1", DEVICE_SVC_PORT, timeout=15, proc=svc)
    # ...but from inet the SYN is silently dropped: no answer at all, not even a RST.
    assert topo.tcp_connect_fails("inet", site_ip, DEVICE_SVC_PORT, timeout=BLOCKED_TIMEOUT)
    assert topo.tcp_probe("inet", site_ip, DEVICE_SVC_PORT, timeout=BLOCKED_TIMEOUT) == "timeout"
    # The hub port on the device side is likewise closed to inet (nothing gets in).
    assert topo.tcp_connect_fails("inet", site_ip, PORT, timeout=BLOCKED_TIMEOUT)

    # The only path between them is the connection the device opened: an
    # established TCP connection from site to inet:PORT.
    def outbound_conn():
        out = topo.run("site", ["ss", "-Htn", "state", "established",
                                "dst", f"{inet_ip}:{PORT}"]).stdout
        return out.strip()
    conns = wait_until("the device's outbound connection to the hub", outbound_conn,
                       timeout=20, proc=sim, log=sim.log_path)
    print(f"device -> hub connections in site:\n{conns}")

    # --- (c) commands go in, results come back -----------------------------
    relay = send(topo, backchannel_bin, "relay", "--arg", "state=open")
    assert relay["state"] == "SUCCEEDED", relay
    assert relay["device"] == DEVICE
    assert relay["outcome"]["data"]["relay"] == "open", relay
    assert relay["outcome"]["data"]["changed"] is True, relay  # the meter starts closed

    read = send(topo, backchannel_bin, "read")
    assert read["state"] == "SUCCEEDED", read
    data = read["outcome"]["data"]
    for key in ("kWh", "kW", "V", "A", "PF", "relay"):
        assert key in data, f"read result lacks {key}: {data}"
    assert data["relay"] == "open", f"read after relay open shows {data['relay']}"
    assert isinstance(data["kWh"], (int, float)) and data["kWh"] > 0, data

    # The device's execution log: each command executed exactly once.
    executions, bad = read_jsonl(sim_dir / "executions.jsonl")
    assert not bad, f"unparseable execution log lines: {bad}"
    for view in (relay, read):
        runs = [e for e in executions if e["id"] == view["id"]]
        assert len(runs) == 1, f"{view['name']} {view['id']} executed {len(runs)} times: {runs}"
        assert runs[0]["device"] == DEVICE and runs[0]["name"] == view["name"], runs
    # The hub agrees (GET /v1/commands/{id} from inet).
    status, stored = api_get(topo, f"/v1/commands/{relay['id']}")
    assert status == 200 and stored["state"] == "SUCCEEDED", (status, stored)

    # --- (d) readings flow up to the hub -------------------------------------
    def readings():
        status, page = api_get(topo, f"/v1/devices/{DEVICE}/uplink?kind=reading&limit=100")
        assert status == 200, (status, page)
        return page["items"]
    items = wait_until("readings from the device at the hub", readings, timeout=30,
                       interval=0.5, proc=sim, log=sim.log_path)
    assert all(item["device"] == DEVICE and item["kind"] == "reading" for item in items), items
    assert "kWh" in items[0]["data"], items[0]
    # The relay change was reported as an event too.
    def relay_event():
        status, page = api_get(topo, f"/v1/devices/{DEVICE}/uplink?kind=event&limit=100")
        assert status == 200, (status, page)
        return [e for e in page["items"]
                if e["name"] == "relay.changed" and e["data"].get("relay") == "open"]
    wait_until("the relay.changed event at the hub", relay_event, timeout=30,
               interval=0.5, proc=sim, log=sim.log_path)

    # Both processes are still healthy.
    assert hub.poll() is None, netns.log_tail(hub)
    assert sim.poll() is None, netns.log_tail(sim)
