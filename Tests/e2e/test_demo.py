"""The README's quick start, end to end: `backchannel demo`, then from another
process `backchannel send meter-001 read --wait` prints live meter values.

Runs as any user (loopback only). The demo's HOME is a temporary directory, so
the operator token the demo saves for the CLI is found exactly as on a fresh
machine.
"""

from __future__ import annotations

import re
import signal
import subprocess

from bcproc import clean_env, free_port, line_buffered, tail, wait_for_log


def test_demo_then_send_read_prints_live_values(backchannel_bin, artifacts):
    home = artifacts / "home"
    home.mkdir()
    env = clean_env({"HOME": str(home)})
    port = free_port()
    hub = f"http://127.0.0.1:{port}"
    log = artifacts / "demo.log"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            line_buffered([backchannel_bin, "demo", "--port", str(port), "--devices", "5", "--interval", "1"]),
            cwd=artifacts, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log(log, r"Press Ctrl-C to stop", timeout=60, proc=demo)
        text = log.read_text()
        assert f"hub at {hub}" in text
        assert "send meter-001 read --wait" in text, "the demo prints what to try next"

        sent = subprocess.run(
            [backchannel_bin, "send", "meter-001", "read", "--wait", "--hub", hub],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "SUCCEEDED" in sent.stdout
        values = dict(re.findall(r"^(kWh|kW|V|A|PF|relay)\s+(\S+)$", sent.stdout, re.M))
        assert set(values) == {"kWh", "kW", "V", "A", "PF", "relay"}, sent.stdout
        assert 200 < float(values["V"]) < 260
        assert float(values["kWh"]) > 0

        # Readings keep flowing, and the device list shows all five meters.
        listed = subprocess.run(
            [backchannel_bin, "devices", "--hub", hub, "--json"], env=env, capture_output=True, text=True, timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        assert [line for line in listed.stdout.splitlines() if '"id"' in line].__len__() == 5

        # A command the meter does not know is rejected, and send says so with exit status 2.
        bogus = subprocess.run(
            [backchannel_bin, "send", "meter-002", "self-destruct", "--wait", "--hub", hub],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert bogus.returncode == 2, bogus.stdout + bogus.stderr
        assert "REJECTED" in bogus.stdout and "unknown_command" in bogus.stdout
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise AssertionError("the demo did not stop on Ctrl-C\n" + tail(log))
    assert code == 0, tail(log)
