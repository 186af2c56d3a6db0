"""Transport security end to end, with the real binary: `certs init` and `certs device` make a
private CA, the hub serves HTTPS with mutual TLS, a simulated device holding only its client
certificate (no token) gets a command executed, and a certificate for another device, a
certificate issued for another tenant than the device's, an untrusted hub certificate and a
client that never finishes its handshake are all refused.

Runs as any user (loopback only).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bcproc import clean_env, free_port, line_buffered, read_jsonl, tail, wait_for_log, wait_until

TOKEN = "tls-e2e-operator-token-0123456789"


def run(backchannel_bin, *args, env, timeout=60):
    return subprocess.run([str(backchannel_bin), *args], env=env, capture_output=True, text=True, timeout=timeout)


def poll(base: str, device: str, seq: int, context: ssl.SSLContext, token: str | None = None):
    """POST one JSON poll for `device`; returns (status, decoded body)."""
    sent_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = json.dumps({"device": device, "seq": seq, "sentAt": sent_at}).encode()
    request = urllib.request.Request(base + "/v1/poll", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def provision(base: str, device: str, tenant: str, context: ssl.SSLContext) -> None:
    """POST /v1/devices as the bootstrap operator (system tenant admin), in `tenant`."""
    body = json.dumps({"id": device, "tenant": tenant}).encode()
    request = urllib.request.Request(base + "/v1/devices", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    with opener.open(request, timeout=10) as response:
        assert response.status in (200, 201), response.status


def client_context(certs: Path, device: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    if device:
        context.load_cert_chain(str(certs / "devices" / f"{device}.crt"), str(certs / "devices" / f"{device}.key"))
    return context


@pytest.fixture
def pki(backchannel_bin, artifacts):
    """A certificate directory with the CA, the hub certificate and two device certificates."""
    env = clean_env({"HOME": str(artifacts)})
    certs = artifacts / "certs"
    made = run(backchannel_bin, "certs", "init", "--dir", str(certs), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    for device in ("meter-001", "meter-002"):
        issued = run(backchannel_bin, "certs", "device", device, "--dir", str(certs), env=env)
        assert issued.returncode == 0, issued.stdout + issued.stderr
        assert f"urn:backchannel:device:{device}" in issued.stdout
        assert "urn:backchannel:tenant:default" in issued.stdout
    # meter-042's certificate as tenant acme issued it, and acme's meter-043: same CA, another
    # directory (certificate files are named by device id).
    acme = artifacts / "certs-acme"
    (acme / "devices").mkdir(parents=True)
    for name in ("ca.crt", "ca.key"):
        (acme / name).write_bytes((certs / name).read_bytes())
        os.chmod(acme / name, 0o600)
    for device in ("meter-042", "meter-043"):
        issued = run(backchannel_bin, "certs", "device", device, "--tenant", "acme", "--dir", str(acme), env=env)
        assert issued.returncode == 0, issued.stdout + issued.stderr
        assert "urn:backchannel:tenant:acme" in issued.stdout
    # And a meter-042 certificate of the system tenant (the default).
    issued = run(backchannel_bin, "certs", "device", "meter-042", "--dir", str(certs), env=env)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    bad = run(backchannel_bin, "certs", "device", "meter-044", "--tenant", "not a tenant", "--dir", str(acme), env=env)
    assert bad.returncode != 0 and "tenant" in bad.stderr
    return certs


def test_certs_are_written_privately_and_never_silently_replaced(backchannel_bin, artifacts, pki):
    env = clean_env({"HOME": str(artifacts)})
    for key in (pki / "ca.key", pki / "hub.key", pki / "devices" / "meter-001.key"):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, key
    before = (pki / "ca.crt").read_bytes()
    again = run(backchannel_bin, "certs", "init", "--dir", str(pki), env=env)
    assert again.returncode != 0
    assert "exists already" in again.stderr and "--force" in again.stderr
    assert (pki / "ca.crt").read_bytes() == before
    device_again = run(backchannel_bin, "certs", "device", "meter-001", "--dir", str(pki), env=env)
    assert device_again.returncode != 0 and "exists already" in device_again.stderr
    forced = run(backchannel_bin, "certs", "device", "meter-001", "--dir", str(pki), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    # What the CLI issues, OpenSSL (through Python) accepts as chaining to the CA.
    context = client_context(pki, "meter-001")
    assert context is not None
    helped = run(backchannel_bin, "certs", "--help", env=env)
    assert "devices/<id>.crt" in helped.stdout and "--client-ca" in helped.stdout


def test_a_device_with_only_its_client_certificate_runs_a_command_over_mtls(backchannel_bin, artifacts, pki):
    env = clean_env({"HOME": str(artifacts)})
    env.pop("BACKCHANNEL_TOKEN", None)
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    hub_log = artifacts / "hub.log"
    with open(hub_log, "w") as out:
        hub = subprocess.Popen(
            line_buffered([str(backchannel_bin), "hub", "--port", str(port), "--data-dir", str(artifacts / "data"),
                           "--operator-token", TOKEN, "--no-save-credentials", "--log-level", "warning",
                           "--tls-cert", str(pki / "hub.crt"), "--tls-key", str(pki / "hub.key"),
                           "--client-ca", str(pki / "ca.crt"), "--header-timeout", "2"]),
            env=env, stdout=out, stderr=subprocess.STDOUT)
    simulator = None
    try:
        wait_for_log(hub_log, rf"backchannel hub listening on https://127\.0\.0\.1:{port}", timeout=30, proc=hub)
        operator = ["--hub", base, "--ca", str(pki / "ca.crt"), "--token", TOKEN]

        # Operators reach the https hub with --ca; without it the hub's certificate is refused.
        for device in ("meter-001", "meter-002"):
            added = run(backchannel_bin, "devices", "add", device, *operator, env=env)
            assert added.returncode == 0, added.stdout + added.stderr
        untrusted = run(backchannel_bin, "devices", "--hub", base, "--token", TOKEN, env=env)
        assert untrusted.returncode != 0
        assert "cannot reach the hub" in untrusted.stderr

        # The device holds its certificate and key only: no token, no operator token.
        sim_log = artifacts / "sim.log"
        state = artifacts / "sim"
        with open(sim_log, "w") as out:
            simulator = subprocess.Popen(
                line_buffered([str(backchannel_bin), "simulate", "--hub", base, "--ca", str(pki / "ca.crt"),
                               "--client-cert", str(pki / "devices" / "meter-001.crt"),
                               "--client-key", str(pki / "devices" / "meter-001.key"),
                               "--devices", "1", "--state-dir", str(state), "--long-poll", "5",
                               "--log-level", "warning"]),
                env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_for_log(sim_log, r"simulating 1 meters", timeout=30, proc=simulator)
        sent = run(backchannel_bin, "send", "meter-001", "read", "--wait", *operator, env=env, timeout=90)
        assert sent.returncode == 0, sent.stdout + sent.stderr + tail(sim_log)
        assert "SUCCEEDED" in sent.stdout and "kWh" in sent.stdout
        executions, _ = read_jsonl(state / "executions.jsonl")
        assert any(entry.get("device") == "meter-001" for entry in executions), executions
        assert not (state / "meter-001" / "credentials.json").exists(), "a certificate device is not provisioned"

        # meter-002's certificate does not speak for meter-001, token or not.
        status, body = poll(base, "meter-001", 1000, client_context(pki, "meter-002"))
        assert status == 401 and body["message"] == "the client certificate is for another device", body
        # Neither certificate nor token: 401; meter-002's own certificate: served.
        status, body = poll(base, "meter-002", 1, client_context(pki))
        assert status == 401, body
        status, body = poll(base, "meter-002", 1, client_context(pki, "meter-002"))
        assert status == 200 and body["seq"] == 1, body

        # Tenant evil provisioned meter-042 before acme did: neither acme's certificate for
        # meter-042 nor the system tenant's authenticates evil's device, and the refusal names no
        # tenant. acme's certificate for acme's meter-043 does.
        acme = pki.parent / "certs-acme"
        trusted = client_context(pki)
        provision(base, "meter-042", "evil", trusted)
        provision(base, "meter-043", "acme", trusted)
        for certs in (acme, pki):
            status, body = poll(base, "meter-042", 1, client_context(certs, "meter-042"))
            assert status == 401, (certs, body)
            assert "evil" not in body["message"] and "acme" not in body["message"], body
        status, body = poll(base, "meter-043", 1, client_context(acme, "meter-043"))
        assert status == 200 and body["seq"] == 1, body

        # A client that does not trust the CA refuses the hub.
        with pytest.raises(urllib.error.URLError) as refused:
            poll(base, "meter-002", 2, ssl.create_default_context())
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)

        # A connection that never starts its handshake is closed after --header-timeout.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            started = time.monotonic()
            assert raw.recv(1) == b""
            assert time.monotonic() - started < 8
    finally:
        if simulator is not None:
            simulator.send_signal(signal.SIGINT)
            try:
                simulator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                simulator.kill()
        hub.terminate()
        try:
            hub.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.kill()
            raise AssertionError("the hub did not stop on SIGTERM\n" + tail(hub_log))
