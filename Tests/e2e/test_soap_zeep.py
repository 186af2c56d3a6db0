"""Interop: a device session driven by the Python SOAP toolkit zeep, from the WSDL the hub
serves, with no XML written by hand.

The device polls, receives a command queued by the operator, returns its result (the
result's inner SOAP envelope built by zeep from the WSDL's types), and the hub records
SUCCEEDED. Session errors come back as SOAP 1.2 Faults that zeep raises as zeep.exceptions.Fault.
"""

from __future__ import annotations

import datetime

import pytest
import requests

from bcproc import Api, running_hub

import zeep  # noqa: E402  (installed by scripts/install-test-deps)
from zeep.transports import Transport  # noqa: E402

TOKEN = "e2e-soap-operator-token-0123456789"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def hub(backchannel_bin, artifacts):
    with running_hub(backchannel_bin, artifacts, TOKEN) as url:
        yield url


def client_for(base: str, token: str):
    session = requests.Session()
    session.trust_env = False  # no proxies
    session.headers["Authorization"] = f"Bearer {token}"
    return zeep.Client(f"{base}/v1/poll?wsdl", transport=Transport(session=session))


def test_zeep_drives_a_device_session_from_the_wsdl(hub):
    api = Api(hub, TOKEN)
    status, device = api.post("/v1/devices", {"id": "soap-meter-1"})
    assert status == 201, device
    status, command = api.post("/v1/devices/soap-meter-1/commands", {"name": "relay", "args": {"state": "open"}})
    assert status == 201, command

    client = client_for(hub, device["token"])
    # The WSDL describes the operation fully: zeep found the Poll operation and its types.
    assert "Poll" in [op for op in client.service._binding._operations]

    # Poll 1: receive the command (an inner envelope whose body is a bc:Command).
    first = client.service.Poll(device="soap-meter-1", seq=1, sentAt=now(), accept=5, wait=0)
    assert first.seq == 1
    assert len(first.Request) == 1, first
    request = first.Request[0]
    assert request.id == command["id"] and request.origin == "operator:root" and request.attempt == 1
    inner = request.Envelope.Body.Command
    assert inner.name == "relay"
    args = {element.tag: element.text for element in inner.args._value_1}
    assert args == {"state": "open"}, args

    # Poll 2: acknowledge it and return its result as an inner envelope built from the WSDL types.
    second = client.service.Poll(
        device="soap-meter-1", seq=2, sentAt=now(), accept=5, wait=0, ack=[request.id],
        Result=[{"id": request.id,
                 "Envelope": {"Body": {"CommandResult": {"status": "succeeded", "detail": "relay opened",
                                                          "finishedAt": now()}}}}])
    assert second.seq == 2 and not second.Request

    status, view = api.get(f"/v1/commands/{command['id']}")
    assert status == 200
    assert view["state"] == "SUCCEEDED", view
    assert view["outcome"]["detail"] == "relay opened"
    # The device's inner result envelope is kept verbatim (made standalone) for SOAP readers.
    assert view["outcome"]["envelope"].startswith("<soap-env:Envelope"), view["outcome"]
    assert [t["to"] for t in view["history"]] == ["QUEUED", "DISPATCHED", "ACKED", "SUCCEEDED"]

    # A retried poll (same seq, same bytes) gets the identical answer; a reused seq with a
    # different body is a Fault with the sequence_conflict subcode.
    with pytest.raises(zeep.exceptions.Fault) as conflict:
        client.service.Poll(device="soap-meter-1", seq=2, sentAt=now(), accept=1, wait=0)
    assert conflict.value.code == "env:Sender"
    assert [str(q) for q in conflict.value.subcodes] == ["{urn:backchannel:poll:1}sequence_conflict"]
    assert "sequence number 2" in conflict.value.message

    # A wrong token is a Sender fault too (HTTP 401).
    with pytest.raises(zeep.exceptions.Fault) as unauthorized:
        client_for(hub, "wrong-token").service.Poll(device="soap-meter-1", seq=3, sentAt=now())
    assert "bearer token" in unauthorized.value.message
