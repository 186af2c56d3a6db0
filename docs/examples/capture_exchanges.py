#!/usr/bin/env python3
"""Runs a real hub and records the rendezvous, SOAP and REST exchanges shown in docs/protocol.md.

    python3 docs/examples/capture_exchanges.py .build/debug/backchannel > /tmp/captured.md

Every request is sent exactly as printed; every response is printed exactly as received
(XML responses are also shown re-indented, for reading). Nothing here is hand-written output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.dom.minidom

OPERATOR = "docs-operator-token-0123456789abcdef"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, binary: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="bc-docs-")
        self.proc = subprocess.Popen(
            [binary, "hub", "--port", str(self.port), "--data-dir", self.dir, "--operator-token", OPERATOR,
             "--no-save-credentials", "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": self.dir})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with OPENER.open(self.base + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("hub did not start")

    def call(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with OPENER.open(request, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def operator(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        status, _, raw = self.call(method, path, data, {"Authorization": f"Bearer {OPERATOR}",
                                                        "Content-Type": "application/json"})
        return status, (json.loads(raw) if raw else None)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def block(lang: str, text: str):
    print(f"```{lang}\n{text.rstrip()}\n```\n")


def show(hub: Hub, title: str, method: str, path: str, body: str | None, token: str,
         content_type: str = "application/json", pretty: bool = True) -> tuple[int, bytes]:
    print(f"**{title}**\n")
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    block("http", f"{method} {path} HTTP/1.1" + (f"\nContent-Type: {content_type}" if body is not None else ""))
    if body is not None:
        block("xml" if "xml" in content_type else "json", body)
    status, resp_headers, raw = hub.call(method, path, body.encode() if body is not None else None, headers)
    ctype = resp_headers.get("Content-Type", "")
    print(f"`{status}`, `Content-Type: {ctype}`, exactly as received:\n")
    text = raw.decode()
    block("xml" if "xml" in ctype else "json", text)
    if pretty and "xml" in ctype and text.startswith("<?xml"):
        print("Re-indented for reading:\n")
        block("xml", xml.dom.minidom.parseString(raw).toprettyxml(indent="  ").split("\n", 1)[1])
    return status, raw


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def rendezvous(hub: Hub):
    print("<!-- section:rendezvous -->\n")
    _, master = hub.operator("POST", "/v1/devices", {"id": "master-7", "labels": {"site": "a"}})
    _, meter = hub.operator("POST", "/v1/devices", {"id": "meter-b1", "labels": {"site": "b"}})
    print("**0. The operator allows the pair** (`POST /v1/rendezvous/rules`, operator token):\n")
    rule_body = {"from": "device:master-7", "to": "label:site=b", "commands": ["read"]}
    block("json", json.dumps(rule_body, indent=2))
    status, rule = hub.operator("POST", "/v1/rendezvous/rules", rule_body)
    print(f"`{status}` (the hub's JSON, re-indented):\n")
    block("json", json.dumps(rule, indent=2))
    # meter-b1 has polled once, so it is reachable.
    hub.call("POST", "/v1/poll", json.dumps({"device": "meter-b1", "seq": 1, "sentAt": now()}).encode(),
             {"Authorization": f"Bearer {meter['token']}", "Content-Type": "application/json"})
    poll = {"device": "master-7", "seq": 1, "sentAt": now(), "requests": [
        {"ref": "gather-17.0", "to": "device:meter-b1", "name": "read", "args": {"registers": ["kWh", "V"]},
         "ttl": 300, "onUnavailable": "fail"},
        {"ref": "gather-17.1", "to": "device:meter-b1", "name": "relay", "args": {"state": "open"}}],
        "accept": 4, "wait": 0}
    _, raw = show(hub, "1. The master sends two requests to meter-b1 in its poll.", "POST", "/v1/poll",
                  json.dumps(poll, indent=2), master["token"])
    routed = json.loads(raw)["routed"][0]["id"]
    _, raw = show(hub, "2. meter-b1 polls and receives the routed request, with the master as origin.", "POST",
                  "/v1/poll", json.dumps({"device": "meter-b1", "seq": 2, "sentAt": now(), "accept": 4, "wait": 25},
                                         indent=2), meter["token"])
    result = {"device": "meter-b1", "seq": 3, "sentAt": now(), "acks": [routed], "results": [
        {"id": routed, "status": "succeeded", "data": {"kWh": 10234.5, "V": 230.1}, "finishedAt": now()}],
        "accept": 4, "wait": 0}
    show(hub, "3. meter-b1 acknowledges and answers in one poll.", "POST", "/v1/poll", json.dumps(result, indent=2),
         meter["token"])
    show(hub, "4. The master's next poll carries the reply, correlated by `ref` and `id`.", "POST", "/v1/poll",
         json.dumps({"device": "master-7", "seq": 2, "sentAt": now(), "accept": 4, "wait": 25}, indent=2),
         master["token"])
    show(hub, "5. The master acknowledges the reply; it is not delivered again.", "POST", "/v1/poll",
         json.dumps({"device": "master-7", "seq": 3, "sentAt": now(), "replyAcks": [routed], "accept": 4, "wait": 0},
                    indent=2), master["token"])
    show(hub, "6. The master asks for the state of its request (REST binding, device token).", "GET",
         "/v1/rest/master-7/peer-requests/gather-17.0", None, master["token"])


def soap(hub: Hub):
    print("<!-- section:soap -->\n")
    _, device = hub.operator("POST", "/v1/devices", {"id": "soap-meter-3"})
    _, command = hub.operator("POST", "/v1/devices/soap-meter-3/commands",
                              {"name": "set-interval", "args": {"seconds": 900}})
    poll1 = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:bc="urn:backchannel:poll:1">
  <env:Body>
    <bc:Poll>
      <bc:device>soap-meter-3</bc:device>
      <bc:seq>1</bc:seq>
      <bc:sentAt>{now()}</bc:sentAt>
      <bc:accept>4</bc:accept>
      <bc:wait>0</bc:wait>
      <bc:Uplink id="bill-2026-11" kind="reading" name="billing_information" at="{now()}">
        <bc:data><kWh_month>45.54</kWh_month><peak_kW>3.2</peak_kW><tariff type="string">007</tariff></bc:data>
      </bc:Uplink>
    </bc:Poll>
  </env:Body>
</env:Envelope>"""
    _, raw = show(hub, "1. A SOAP poll with a self-describing reading; the answer carries a command as an inner "
                  "envelope.", "POST", "/v1/poll", poll1, device["token"], content_type="application/soap+xml; charset=utf-8")
    poll2 = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:bc="urn:backchannel:poll:1">
  <env:Body>
    <bc:Poll>
      <bc:device>soap-meter-3</bc:device>
      <bc:seq>2</bc:seq>
      <bc:sentAt>{now()}</bc:sentAt>
      <bc:accept>4</bc:accept>
      <bc:wait>0</bc:wait>
      <bc:ack>{command['id']}</bc:ack>
      <bc:Result id="{command['id']}">
        <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:bc="urn:backchannel:poll:1">
          <env:Body>
            <bc:CommandResult status="succeeded">
              <bc:data><interval>900</interval></bc:data>
              <bc:finishedAt>{now()}</bc:finishedAt>
            </bc:CommandResult>
          </env:Body>
        </env:Envelope>
      </bc:Result>
    </bc:Poll>
  </env:Body>
</env:Envelope>"""
    show(hub, "2. The device acknowledges and returns the result as its own inner envelope.", "POST", "/v1/poll",
         poll2, device["token"], content_type="application/soap+xml; charset=utf-8")
    status, view = hub.operator("GET", f"/v1/commands/{command['id']}")
    print(f"The command is now `{view['state']}`; `outcome.envelope` keeps the device's inner envelope verbatim:\n")
    block("json", json.dumps(view["outcome"], indent=2))
    show(hub, "3. A stale sequence number: a SOAP 1.2 Fault, HTTP 409.", "POST", "/v1/poll",
         poll1.replace("<bc:seq>1</bc:seq>", "<bc:seq>1</bc:seq>").replace("45.54", "45.55"), device["token"],
         content_type="application/soap+xml; charset=utf-8")
    show(hub, "4. A SOAP 1.1 envelope: VersionMismatch, HTTP 500.", "POST", "/v1/poll",
         '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>', device["token"],
         content_type="text/xml; charset=utf-8")
    show(hub, "5. A document with a DTD (here XXE): refused before anything is expanded, HTTP 400.", "POST",
         "/v1/poll", '<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
         '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>&xxe;</env:Body></env:Envelope>',
         device["token"], content_type="application/soap+xml; charset=utf-8")


def rest(hub: Hub):
    print("<!-- section:rest -->\n")
    _, device = hub.operator("POST", "/v1/devices", {"id": "rest-meter-5"})
    _, command = hub.operator("POST", "/v1/devices/rest-meter-5/commands", {"name": "read"})
    body = json.dumps([{"id": "r-0001", "name": "meter", "at": now(), "data": {"kWh": 512.25, "V": 229.8}}], indent=2)
    show(hub, "1. Readings; the answer carries the waiting command.", "POST", "/v1/rest/rest-meter-5/readings", body,
         device["token"])
    xml_body = (f'<readings>\n  <reading id="r-0002" at="{now()}"><billing_information><kWh_month>45.54</kWh_month>'
                f'</billing_information></reading>\n</readings>')
    show(hub, "2. Readings as self-describing XML.", "POST", "/v1/rest/rest-meter-5/readings?accept=0", xml_body,
         device["token"], content_type="application/xml")
    hub.operator("POST", "/v1/devices/rest-meter-5/commands", {"name": "ping"})
    show(hub, "3. The result of request X (acknowledges it too); the next command rides back.", "POST",
         f"/v1/rest/rest-meter-5/requests/{command['id']}/result",
         json.dumps({"status": "succeeded", "data": {"kWh": 512.25}}, indent=2), device["token"])


def export(hub: Hub):
    print("<!-- section:export -->\n")
    for fmt in ("csv", "xml"):
        day = time.strftime("%Y-%m-%d", time.gmtime())
        path = f"/v1/devices/rest-meter-5/export?format={fmt}&from={day}T00:00:00Z&to={day}T23:59:59Z"
        status, headers, raw = hub.call("GET", path, None, {"Authorization": f"Bearer {OPERATOR}"})
        print(f"`GET {path}` → `{status}`, `Content-Type: {headers.get('Content-Type')}`:\n")
        block(fmt, raw.decode())


def main():
    hub = Hub(sys.argv[1] if len(sys.argv) > 1 else ".build/debug/backchannel")
    try:
        print(f"<!-- captured {now()} by docs/examples/capture_exchanges.py -->\n")
        rendezvous(hub)
        soap(hub)
        rest(hub)
        export(hub)
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
