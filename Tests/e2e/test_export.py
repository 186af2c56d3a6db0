"""`backchannel export` against a real hub: CSV to a file (whole or not at all), XML to stdout.

Readings are posted by a device through the REST binding, one batch as self-describing XML
and one as JSON; the export covers a time range and lists them in measurement order.
"""

from __future__ import annotations

import csv
import io
import subprocess
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from bcproc import Api, clean_env, running_hub

TOKEN = "e2e-export-operator-token-0123456789"


@pytest.fixture
def hub(backchannel_bin, artifacts):
    with running_hub(backchannel_bin, artifacts, TOKEN) as url:
        yield url


def post(url: str, body: str, content_type: str, token: str) -> int:
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return response.status


def test_export_csv_and_xml(hub, backchannel_bin, artifacts):
    status, device = Api(hub, TOKEN).post("/v1/devices", {"id": "meter-x"})
    assert status == 201, device
    xml = ("<readings>"
           "<reading id='b2' at='2027-01-15T08:02:00Z'><billing_information><kWh_month>45.54</kWh_month>"
           "</billing_information></reading>"
           "<reading id='b1' at='2027-01-15T08:01:00Z'><billing_information><kWh_month>40</kWh_month>"
           "</billing_information></reading></readings>")
    assert post(f"{hub}/v1/rest/meter-x/readings", xml, "application/xml", device["token"]) == 200
    batch = ('[{"id":"m3","name":"meter","at":"2027-01-15T08:03:00Z","data":{"kWh":12.5,"phase":{"A":1.5}}},'
             '{"id":"late","name":"meter","at":"2027-01-16T00:00:00Z","data":{"kWh":99}}]')
    assert post(f"{hub}/v1/rest/meter-x/readings", batch, "application/json", device["token"]) == 200

    out = artifacts / "meter-x.csv"
    run = subprocess.run(
        [str(backchannel_bin), "export", "meter-x", "--format", "csv", "--from", "2027-01-15T00:00:00Z",
         "--to", "2027-01-15T12:00:00Z", "--output", str(out), "--hub", hub, "--token", TOKEN],
        env=clean_env({"HOME": str(artifacts)}), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "wrote 3 readings" in run.stderr, run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["id"] for r in rows] == ["b1", "b2", "m3"], rows
    assert rows[1]["kWh_month"] == "45.54" and rows[2]["kWh"] == "12.5" and rows[2]["phase.A"] == "1.5", rows
    assert not list(artifacts.glob(".meter-x.csv.partial")), "the partial file is renamed, not left behind"

    run = subprocess.run(
        [str(backchannel_bin), "export", "meter-x", "--format", "xml", "--from", "2027-01-15T00:00:00Z",
         "--to", "2027-01-17T00:00:00Z", "--hub", hub, "--token", TOKEN],
        env=clean_env({"HOME": str(artifacts)}), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    root = ET.fromstring(run.stdout)
    assert [r.get("id") for r in root] == ["b1", "b2", "m3", "late"]
    assert root[1].find("billing_information/kWh_month").text == "45.54"

    # Relative times: a value starting with a dash is taken as the value of --from.
    rel = subprocess.run(
        [str(backchannel_bin), "export", "meter-x", "--from", "-7d", "--hub", hub, "--token", TOKEN],
        env=clean_env({"HOME": str(artifacts)}), capture_output=True, text=True, timeout=60)
    assert rel.returncode == 0, rel.stderr
    assert rel.stdout.startswith("device,id,kind,name,at,receivedAt"), rel.stdout

    # A bad range is refused with a clear message and no file.
    bad = subprocess.run(
        [str(backchannel_bin), "export", "meter-x", "--from", "2027-01-16T00:00:00Z", "--to", "2027-01-15T00:00:00Z",
         "--output", str(artifacts / "bad.csv"), "--hub", hub, "--token", TOKEN],
        env=clean_env({"HOME": str(artifacts)}), capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "from: must be before to" in bad.stderr, bad.stderr
    assert not (artifacts / "bad.csv").exists()
