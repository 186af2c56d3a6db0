"""Presence from the CLI against a real hub and real simulated devices.

Two meters poll periodically (1 s interval, 3 s grace). `backchannel presence` shows them
online; when their simulator is killed, each becomes presence-error at its own deadline, seen
by `backchannel presence watch` and recorded in `presence show`.
"""

from __future__ import annotations

import json
import signal
import subprocess

from bcproc import clean_env, free_port, line_buffered, wait_for_log, wait_until

TOKEN = "e2e-presence-operator-token-0123456789"


def cli(bin_, hub, *argv, timeout=30):
    run = subprocess.run([str(bin_), *argv, "--hub", hub, "--token", TOKEN], env=clean_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_presence_online_then_presence_error(backchannel_bin, artifacts):
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    env = clean_env({"HOME": str(artifacts)})
    with open(artifacts / "hub.log", "w") as out:
        hub = subprocess.Popen(
            line_buffered([str(backchannel_bin), "hub", "--port", str(port), "--data-dir", str(artifacts / "data"),
                           "--operator-token", TOKEN, "--no-save-credentials", "--poll-interval", "1",
                           "--presence-grace", "3", "--log-level", "warning"]),
            env=env, stdout=out, stderr=subprocess.STDOUT)
    sim = None
    try:
        wait_for_log(artifacts / "hub.log", r"listening on http://", timeout=30, proc=hub)
        with open(artifacts / "sim.log", "w") as out:
            sim = subprocess.Popen(
                line_buffered([str(backchannel_bin), "simulate", "--hub", hub_url, "--devices", "2",
                               "--state-dir", str(artifacts / "sim"), "--token", TOKEN, "--long-poll", "0",
                               "--interval", "60"]),
                env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_for_log(artifacts / "sim.log", r"started 2 simulated meters", timeout=30, proc=sim)

        def online():
            views = json.loads(cli(backchannel_bin, hub_url, "presence", "--json"))
            return views if all(v["inferred"] == "online" and v["available"] for v in views) and len(views) == 2 \
                else None
        views = wait_until("both meters online", online, timeout=20, proc=sim)
        assert all(v["contactBy"] for v in views), views

        watch = subprocess.Popen(
            [str(backchannel_bin), "presence", "watch", "--state", "presence-error", "--count", "2", "--json",
             "--hub", hub_url, "--token", TOKEN], env=clean_env(), stdout=subprocess.PIPE, text=True)
        # The deadlines fire 1 s (interval) + 3 s (grace) after the meters' last polls, leaving
        # the watcher ample time to subscribe.
        sim.send_signal(signal.SIGKILL)
        sim.wait(timeout=10)
        out, _ = watch.communicate(timeout=30)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert sorted(e["device"] for e in events) == ["meter-001", "meter-002"], out
        assert all(e["detail"] == "presence-error" and e["data"]["reason"] == "deadline-missed" for e in events)

        shown = cli(backchannel_bin, hub_url, "presence", "show", "meter-001")
        assert "presence-error" in shown and "deadline-missed" in shown, shown
        errors = json.loads(cli(backchannel_bin, hub_url, "presence", "--state", "presence-error", "--json"))
        assert [v["device"] for v in errors] == ["meter-001", "meter-002"], errors
    finally:
        if sim and sim.poll() is None:
            sim.kill()
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=15)
