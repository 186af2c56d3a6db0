"""API conformance: schemathesis against the OpenAPI document a real hub serves.

The hub runs on loopback with a fresh data directory, no operator rate limit
(`--operator-rate 0`, so a fast fuzzer is not answered 429) and long-polls capped at 1 s
(`--max-wait 1`). The test provisions devices, commands, a campaign, a rendezvous rule, a
peer request with its reply, an alarm, an artifact and an operator, so that path parameters
can name real records (schemathesis dictionaries, drawn half the time), then runs
`schemathesis run` on `/openapi.json` in two passes:

1. device pass: the device endpoints (`POST /v1/poll`, `/v1/rest/...`, `GET /v1/firmware/...`)
   with meter-1's device token, before any operator call can rotate that token;
2. operator pass: every other operation, with the bootstrap operator token (root, the system
   tenant's admin);
3. tenant pass: the same operations, fewer examples, as the admin of another tenant, to whom
   the system tenant's records are 404 and hub-wide settings are not shown. It leaves out
   `POST /v1/operators/{name}/token` and `DELETE /v1/operators/{name}`: following `whoami`,
   the fuzzer would rotate or delete its own operator and spend the rest of the pass on 401s
   (the operator pass covers both).

Each pass checks that no response is a 5xx and that every response's status code, content
type, headers and body are the ones the document declares. Generation is deterministic
(no seed drawn), with a bounded number of examples per operation.

Long-lived responses are fuzzed too, within bounds: the server-sent event streams
(`/v1/events`, `/v1/presence/events`, `/v1/alarms/events`) are read for at most 0.25 s or one
event (`request-timeout`, `max-stream-events`), so their status, content type and error
bodies are checked; the WebSocket endpoints (`/v1/ws`, `/v1/presence/ws`) get plain requests,
which must be answered 426 (or 401/403/429) as documented; the upgrade itself is left to the
socket tests.

Nothing is excluded. `POST /v1/poll` with a SOAP body may answer HTTP 500 with a SOAP 1.2
`env:VersionMismatch` or `env:MustUnderstand` fault, as SOAP 1.2 prescribes; those and only
those are let through by schemathesis_hooks.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bcproc import Api, clean_env, running_hub

TOKEN = "e2e-schemathesis-operator-token-0123456789"

# Server-sent event streams never end while the hub runs: each response is read for at most
# this long (or one event), and a few examples suffice.
EVENT_STREAMS = r"^/v1/(presence/|alarms/)?events$"
STREAM_SETTINGS = [
    "[[operations]]",
    f"include-path-regex = {json.dumps(EVENT_STREAMS)}",
    "request-timeout = 0.25",
    "request-retries = 2",  # a stream's headers late under load: try again rather than fail
    "max-stream-events = 1",
    "generation.max-examples = 5",
]

# Operations whose security scheme is the device token.
DEVICE_PATHS = r"^/v1/(poll|rest/.*|firmware/.*)$"

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
MAX_EXAMPLES = 25
# filter_failure: lets through the SOAP binding's protocol faults (HTTP 500 by SOAP 1.2), nothing else.
HOOKS = Path(__file__).resolve().parent / "schemathesis_hooks.py"


def _opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def device_call(hub: str, method: str, path: str, token: str, body: object | None = None,
                raw: bytes | None = None, content_type: str = "application/json") -> tuple[int, object]:
    """One device (or raw-body operator) request; returns (status, decoded JSON)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(hub + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    with _opener().open(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


def seed(hub: str) -> dict[str, list[str] | str]:
    """Creates the records the fuzzer's path parameters may name; returns their ids and the
    device token of meter-1 (the device the device pass speaks for)."""
    api = Api(hub, TOKEN)

    def ok(result: tuple[int, object], *expected: int) -> dict:
        status, body = result
        assert status in expected, (status, body)
        return body

    tokens = {}
    for device in ("meter-1", "meter-2"):
        tokens[device] = ok(api.post("/v1/devices", {"id": device, "labels": {"site": "fuzz"}}), 201)["token"]

    # Readings for the uplink and export listings, and for an alarm on meter-2.
    ok(api.request("PUT", "/v1/alarms/config", {
        "rules": [{"id": "hot", "name": "hot", "valuePath": "temp", "comparison": "above", "threshold": 50,
                   "severity": "warning"}],
        "escalation": {}}), 200)
    for device in ("meter-1", "meter-2"):
        ok(device_call(hub, "POST", f"/v1/rest/{device}/readings", tokens[device],
                       [{"id": "r1", "name": "meter", "at": "2026-01-01T00:00:00Z", "data": {"temp": 99, "kWh": 1.5}}]),
           200)

    # Commands: one waiting for meter-1 (its REST requests), one queued and one canceled on meter-2.
    ok(api.post("/v1/devices/meter-1/commands", {"id": "cmd-m1", "name": "read"}), 201)
    ok(api.post("/v1/devices/meter-2/commands", {"id": "cmd-1", "name": "read", "args": {"what": "all"}}), 201)
    ok(api.post("/v1/devices/meter-2/commands", {"id": "cmd-2", "name": "relay"}), 201)
    ok(api.post("/v1/commands/cmd-2/cancel", {"reason": "fuzz set-up"}), 200)

    # A peer request from meter-1 to meter-2, answered, so meter-1 has a reply to acknowledge.
    rule = ok(api.post("/v1/rendezvous/rules", {"from": "*", "to": "*", "commands": ["ping"]}), 201)
    ok(device_call(hub, "POST", "/v1/rest/meter-1/peer-requests", tokens["meter-1"],
                   {"ref": "ref-1", "to": "device:meter-2", "name": "ping"}), 200)
    work = ok(device_call(hub, "GET", "/v1/rest/meter-2/requests?accept=100", tokens["meter-2"]), 200)
    ping = next(r["id"] for r in work["requests"] if r["name"] == "ping")
    ok(device_call(hub, "POST", f"/v1/rest/meter-2/requests/{ping}/result", tokens["meter-2"],
                   {"status": "succeeded"}), 200)
    replies = ok(device_call(hub, "GET", "/v1/rest/meter-1/requests?accept=0", tokens["meter-1"]), 200)
    reply_ids = [r["id"] for r in replies.get("replies", [])]
    assert reply_ids, replies

    campaign = ok(api.post("/v1/campaigns", {"name": "read", "devices": ["meter-2"]}), 201)
    alarms = ok(api.get("/v1/alarms"), 200)["items"]
    assert alarms, "the reading above the threshold raised no alarm"
    ok(api.post("/v1/operators", {"name": "fuzz-viewer", "role": "viewer"}), 201)
    # Another tenant: its admin, and a device of its own.
    tenant_admin = ok(api.post("/v1/operators", {"name": "other-admin", "role": "admin", "tenant": "other"}), 201)
    ok(api.post("/v1/devices", {"id": "meter-o", "tenant": "other"}), 201)

    firmware = b"fuzz firmware image\n" * 64
    digest = hashlib.sha256(firmware).hexdigest()
    ok(device_call(hub, "POST", f"/v1/artifacts?name=fuzz.bin&sha256={digest}", TOKEN, raw=firmware,
                   content_type="application/octet-stream"), 201)

    return {
        "device_token": tokens["meter-1"],
        "tenant_token": tenant_admin["token"],
        "ids": ["meter-2", "meter-o", "cmd-1", "cmd-2", campaign["id"], rule["id"], alarms[0]["id"]],
        "requests": ["cmd-m1"],
        "refs": ["ref-1"],
        "replies": reply_ids,
        "sha256": [digest],
        "names": ["fuzz-viewer", "other-admin"],
        "selectors": ["*", "label:site=fuzz"],
    }


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_config(path: Path, *, operator_token: str, device_token: str, dictionaries: dict[str, list[str]],
                 parameters: dict[str, str]) -> None:
    """A schemathesis.toml: bearer tokens per security scheme, and path/query parameters
    drawn half the time from the records made by `seed`."""
    lines = [
        f"hooks = {json.dumps(str(HOOKS))}",
        "",
        "[generation]",
        "database = \"none\"",
        "",
        "[auth.openapi.operatorToken]",
        f"bearer = {json.dumps(operator_token)}",
        "",
        "[auth.openapi.deviceToken]",
        f"bearer = {json.dumps(device_token)}",
        "",
    ]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}", ""]
    lines.append("[parameters]")
    for parameter, dictionary in parameters.items():
        lines.append(f"{json.dumps(parameter)} = {{ dictionary = {json.dumps(dictionary)}, probability = 0.5 }}")
    lines += ["", *STREAM_SETTINGS]
    path.write_text("\n".join(lines) + "\n")


def run_schemathesis(hub: str, config: Path, artifacts: Path, name: str, *selection: str,
                     max_examples: int = MAX_EXAMPLES) -> tuple[int, str, float]:
    """One `schemathesis run`; returns its exit code, output and wall time."""
    argv = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{hub}/openapi.json",
        "--checks", CHECKS,
        "--generation-deterministic",
        "--max-examples", str(max_examples),
        # One worker: hypothesis 6.155 races in its lambda-description cache with two
        # (FlakyFailure), and one worker keeps the order of requests, and so the run, reproducible.
        "--workers", "1",
        "--request-timeout", "15",
        "--continue-on-failure",
        "--report", "junit", "--report-dir", str(artifacts / f"report-{name}"),
        *selection,
    ]
    started = time.monotonic()
    run = subprocess.run(argv, cwd=artifacts, env=clean_env(), capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    (artifacts / f"schemathesis-{name}.log").write_text(" ".join(argv) + "\n\n" + output)
    return run.returncode, output, elapsed


def test_openapi_conformance(backchannel_bin, artifacts):
    if importlib.util.find_spec("schemathesis") is None:
        pytest.fail("schemathesis is not installed: run scripts/install-test-deps")
    with running_hub(backchannel_bin, artifacts, TOKEN, "--operator-rate", "0", "--max-wait", "1") as hub:
        records = seed(hub)
        dictionaries = {k: v for k, v in records.items() if not k.endswith("_token")}
        operator_parameters = {"path.id": "ids", "path.sha256": "sha256", "path.name": "names",
                               "body.selector": "selectors"}

        device_config = artifacts / "schemathesis-device.toml"
        write_config(device_config, operator_token=TOKEN, device_token=records["device_token"],
                     dictionaries={"devices": ["meter-1"], **dictionaries},
                     parameters={"path.id": "devices", "query.device": "devices", "body.device": "devices",
                                 "path.request": "requests", "path.ref": "refs", "path.reply": "replies",
                                 "path.sha256": "sha256"})
        operator_config = artifacts / "schemathesis-operator.toml"
        write_config(operator_config, operator_token=TOKEN, device_token=records["device_token"],
                     dictionaries=dictionaries, parameters=operator_parameters)
        tenant_config = artifacts / "schemathesis-tenant.toml"
        write_config(tenant_config, operator_token=records["tenant_token"], device_token=records["device_token"],
                     dictionaries=dictionaries, parameters=operator_parameters)

        results = [
            ("device", *run_schemathesis(hub, device_config, artifacts, "device",
                                         "--include-path-regex", DEVICE_PATHS)),
            ("operator", *run_schemathesis(hub, operator_config, artifacts, "operator",
                                           "--exclude-path-regex", DEVICE_PATHS)),
            ("tenant", *run_schemathesis(hub, tenant_config, artifacts, "tenant",
                                         "--exclude-path-regex", DEVICE_PATHS,
                                         "--exclude-path", "/v1/operators/{name}/token",
                                         "--exclude-path", "/v1/operators/{name}", max_examples=5)),
        ]
        status, health = Api(hub, TOKEN).get("/healthz")
        assert status == 200, f"the hub did not survive the fuzzing: {status} {health}"
    for name, _, _, elapsed in results:
        print(f"schemathesis {name} pass: {elapsed:.1f} s")
    for name, code, output, _ in results:
        assert code == 0, f"schemathesis ({name} pass) found failures:\n{output[-20000:]}"
