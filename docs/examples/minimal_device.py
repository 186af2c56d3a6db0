#!/usr/bin/env python3
"""Minimal Backchannel device, protocol v1 (see docs/protocol.md).

Usage: minimal_device.py HUB_URL DEVICE_ID TOKEN [STATE_FILE]
Long-polls the hub, sends a `boot` event, runs `ping` (echoes its args), rejects other commands,
and never runs a command twice (its ledger and sequence number live in STATE_FILE).
"""
import datetime, json, os, random, sys, time

import requests

hub, dev, token = sys.argv[1:4]
path = sys.argv[4] if len(sys.argv) > 4 else dev + ".state.json"
st = json.load(open(path)) if os.path.exists(path) else {"seq": 0, "ledger": {}, "unreported": [], "outbox": []}
def save(): json.dump(st, open(path + ".tmp", "w")); os.replace(path + ".tmp", path)
def ts(t): return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
def secs(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
def execute(req, hub_now):  # put your command handlers here
    if hub_now > secs(req["expiresAt"]): return {"status": "rejected", "code": "too_late", "retryable": False}
    if req["name"] != "ping": return {"status": "rejected", "code": "unknown_command", "retryable": False}
    return {"status": "succeeded", "data": {"echo": req["args"]}}
st["outbox"].append({"id": f"boot-{time.time_ns()}", "kind": "event", "name": "boot", "at": ts(time.time()), "data": {}}); save()
body, failures, offset = None, 0, 0.0
while True:
    if body is None:  # a new physical request; a retry re-sends exactly these bytes
        st["seq"] += 1; save(); sent = list(st["unreported"])
        body = json.dumps({"device": dev, "seq": st["seq"], "sentAt": ts(time.time()), "accept": 10, "wait": 50,
                           "results": [dict(st["ledger"][i], id=i) for i in sent], "uplink": st["outbox"][:100]})
    t0 = time.time()
    try: r = requests.post(hub + "/v1/poll", data=body, timeout=75,  # > wait + margin
                           headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    except requests.RequestException: r = None
    t3, code = time.time(), r.status_code if r is not None else 0
    if code == 200:
        resp, failures, body = r.json(), 0, None
        offset = ((secs(resp["receivedAt"]) - t0) + (secs(resp["sentAt"]) - t3)) / 2  # hub clock = device clock + offset
        st["unreported"] = [i for i in st["unreported"] if i not in sent]
        st["outbox"] = [u for u in st["outbox"] if u["id"] not in resp["stored"]]
        for req in resp["requests"]:
            if req["id"] not in st["ledger"]:  # first delivery: record, honour notBefore, run once
                st["ledger"][req["id"]] = {"status": "failed", "code": "interrupted", "retryable": False}; save()
                time.sleep(max(0.0, secs(req.get("notBefore", ts(0))) - (time.time() + offset)))
                st["ledger"][req["id"]] = execute(req, time.time() + offset)
            if req["id"] not in st["unreported"]: st["unreported"].append(req["id"])  # a redelivery gets the earlier result
        save()
        if not (resp["requests"] or resp["more"] or st["unreported"] or st["outbox"]) and t3 - t0 < 1:
            time.sleep(resp["nextPollAfter"])  # the hub did not hold the poll: poll periodically
    elif code == 409 and r.json().get("code") == "sequence_conflict":
        st["seq"], body = r.json()["lastSeq"], None  # continue above the hub's last seq; the content is rebuilt
    elif code in (400, 401, 403, 404, 413, 415):
        sys.exit(f"hub refused the poll: {code} {r.text}")
    else:  # no answer, 429, 5xx: back off exponentially with full jitter, honour Retry-After, re-send the same bytes
        failures += 1
        retry_after = float(r.headers.get("Retry-After", 0)) if r is not None else 0
        time.sleep(max(retry_after, random.uniform(0, min(60, 0.5 * 2 ** failures))))
