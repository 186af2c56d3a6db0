"""`backchannel power` on plain files: the computations anyone can check by hand.

The inputs are the example files in examples/power; each expected figure is worked out here
from those files, not taken from the program's output.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

from bcproc import clean_env

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "power"


def power(bin_, *argv):
    run = subprocess.run([str(bin_), "power", *argv], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_bill_on_files_shows_every_line_and_adds_up(backchannel_bin):
    bill = json.loads(power(backchannel_bin, "bill", "--tariff", str(EXAMPLES / "tariff-tou.json"),
                            "--intervals", str(EXAMPLES / "intervals.csv")))
    # intervals.csv: 2026-07-15 (a Wednesday) in New York, 96 quarter hours of 1 kWh, 2 kWh from
    # 14:00 to 19:00 local (20 quarter hours, the on-peak period) and 4 kWh at 09:00.
    # Off-peak: 75 × 1 + 4 = 79 kWh × 0.0825 = 6.5175 → 6.52; on-peak: 20 × 2 = 40 kWh × 0.185 = 7.40.
    lines = {item["description"]: item for item in bill["lineItems"]}
    assert lines["Energy, off-peak"]["quantity"] == 79 and lines["Energy, off-peak"]["amount"] == 6.52
    assert lines["Energy, on-peak"]["quantity"] == 40 and lines["Energy, on-peak"]["amount"] == 7.40
    # Demand: the 4 kWh quarter hour is 16 kW × 9.87 = 157.92; on-peak 2 kWh → 8 kW × 4.56 = 36.48.
    assert bill["maxDemand"]["kW"] == 16
    assert bill["onPeakMaxDemand"]["kW"] == 8
    # kvarh = 0.75 × kWh, so PF = 1 / √(1 + 0.75²) = 0.8 < 0.9: each demand's kW × (0.9/0.8 − 1) more:
    # 16 × 0.125 = 2 kW × 9.87 = 19.74 and 8 × 0.125 = 1 kW × 4.56 = 4.56.
    assert bill["powerFactor"] == 0.8
    amounts = sorted(item["amount"] for item in bill["lineItems"])
    assert amounts == sorted([6.52, 7.40, 12.5, 157.92, 19.74, 36.48, 4.56])
    assert round(sum(amounts), 2) == bill["total"] == 245.12
    assert bill["complete"] is True and bill["missingIntervals"] == []


def test_pq_on_a_file_detects_the_dip_with_hysteresis(backchannel_bin):
    result = json.loads(power(backchannel_bin, "pq", "--rms", str(EXAMPLES / "rms-dip.csv"), "--nominal", "230",
                              "--start", "2026-07-15T12:00:00Z"))
    # 230 V: a dip starts below 207 V (90 %) and ends at ≥ 211.6 V (92 %). The values at 10 ms steps:
    # 230 ×5, then 200 (t = 0.05, start), 190, 161, 205, 210, 208 (still below 211.6), 215 (t = 0.11, end).
    [event] = result["events"]
    assert event["kind"] == "dip"
    assert event["start"] == "2026-07-15T12:00:00.050Z" and event["end"] == "2026-07-15T12:00:00.110Z"
    assert math.isclose(event["durationSeconds"], 0.06)
    assert event["residualVolts"] == 161 and math.isclose(event["residualPercent"], 70)
    # 0.7 pu for 3 cycles: an instantaneous sag (0.5–30 cycles, 0.1–0.9 pu).
    assert event["classification"]["label"] == "instantaneous sag"


def test_reliability_on_files_gives_the_ieee_1366_indices(backchannel_bin):
    report = json.loads(power(backchannel_bin, "reliability", "--outages", str(EXAMPLES / "outages.csv"),
                              "--topology", str(EXAMPLES / "topology.json"),
                              "--from", "2026-07-01T00:00:00Z", "--to", "2026-07-08T00:00:00Z"))
    # 200 customers: house-1 40, house-2 60, house-3 100 (pv-1 none). 168 h.
    # house-1 down exactly 5 min: momentary (≤ 5 min), 40 customers.
    # branch-b down 90 min: sustained, its 100 customers; house-2 down 20 min: sustained, 60.
    system = report["system"]
    assert system["customers"] == 200
    assert math.isclose(system["saifi"], (100 + 60) / 200)                     # 0.8
    assert math.isclose(system["saidi"], (90 * 100 + 20 * 60) / 200)           # 51 min
    assert math.isclose(system["caidi"], 51 / 0.8)                             # 63.75 min
    assert math.isclose(system["maifi"], 40 / 200)                             # 0.2
    unavailable = (90 * 100 + 20 * 60) / 60 / (200 * 168)                      # 170 / 33600
    assert math.isclose(system["asai"], 1 - unavailable)
    assert math.isclose(system["nines"], -math.log10(unavailable))             # ≈ 2.296
    # branch-b: 100 customers × 90 min over 100 customers → SAIDI 90; branch-a: 60 × 20 / 100 = 12.
    assert report["leastReliableBranch"] == "branch-b"


def test_shedding_on_files_logs_every_decision(backchannel_bin):
    decisions = json.loads(power(backchannel_bin, "shed", "--schedule", str(EXAMPLES / "shedding-schedule.json"),
                                 "--prices", str(EXAMPLES / "prices.csv")))
    acted = [(d["time"], d["action"]) for d in decisions if d["action"] != "hold"]
    # New York in July is UTC−4: 06:00–18:00 local is 10:00Z–22:00Z at 0.80, otherwise 0.60.
    # 14:00Z 0.70 ≤ 0.80 hold; 16:00Z 0.85 > 0.80 shed; 19:00Z 0.75 < 0.80 restore;
    # 22:00Z the limit drops to 0.60 with 0.75 in force: shed; 22:30Z 0.65 > 0.60 hold;
    # 01:00Z 0.55 < 0.60 restore.
    assert acted == [("2026-07-15T16:00:00.000Z", "shed"), ("2026-07-15T19:00:00.000Z", "restore"),
                     ("2026-07-15T22:00:00.000Z", "shed"), ("2026-07-16T01:00:00.000Z", "restore")], acted
