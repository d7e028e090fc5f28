"""Scrapes `GET /metrics` from a running example (the `bench` one, which
serves its Prometheus metrics), talks to it over a WebSocket, scrapes again
and checks the counters moved by exactly what was sent.

Usage: python scrape.py http://127.0.0.1:PORT
"""

import asyncio
import json
import sys
import urllib.request

import websockets

BASE = sys.argv[1].rstrip("/")


def scrape():
    with urllib.request.urlopen(f"{BASE}/metrics", timeout=5) as response:
        kind = response.headers.get("Content-Type", "")
        if not kind.startswith("text/plain"):
            raise SystemExit(f"FAIL /metrics is {kind!r}, not Prometheus text")
        samples = {}
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                samples[series] = float(value)
        return samples


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAIL {what}")
    print(f"ok   {what}")


async def talk():
    url = BASE.replace("http", "ws", 1) + "/ws/bench"
    async with websockets.connect(url) as socket:
        for seq in range(3):
            await socket.send(json.dumps({"action": "echo", "payload": {"text": "hi", "seq": seq}}))
            reply = json.loads(await socket.recv())
            assert reply["action"] == "echo_result", reply
        await socket.send("not json")
        reply = json.loads(await socket.recv())
        assert reply["action"] == "error", reply


before = scrape()
asyncio.run(talk())
after = scrape()


def moved(series):
    return after.get(series, 0.0) - before.get(series, 0.0)


check(moved("chanx_connections_total") == 1, "chanx_connections_total counts the connection")
check(moved('chanx_frames_received_total{channel="bench"}') == 4, "chanx_frames_received_total counts its 4 messages")
check(moved('chanx_frames_sent_total{channel="bench"}') >= 4, "chanx_frames_sent_total counts the replies")
check(moved('chanx_rejected_frames_total{kind="json_invalid"}') == 1, "chanx_rejected_frames_total counts the bad frame by kind")
check(
    moved('chanx_handler_duration_seconds_count{channel="bench",action="echo"}') == 3,
    "chanx_handler_duration_seconds times the 3 echoes",
)
check(moved("chanx_bytes_received_total") > 0 and moved("chanx_bytes_sent_total") > 0, "bytes both ways")
