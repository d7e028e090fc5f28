"""Drive the `system` example with the Python `websockets` client.

A client that is not part of this project must see the welcome frame, the
echo, the pong, and every error frame of the protocol table, with the
connection still open afterwards.

Usage:
    python system_client.py ws://127.0.0.1:PORT/ws/system
    python system_client.py --expect-shutdown ws://127.0.0.1:PORT/ws/system
        connects, prints READY, and expects close code 1001 once the server
        is sent Ctrl-C (SIGINT).
"""

import asyncio
import json
import sys

import websockets

WELCOME = {"action": "system_echo", "payload": {"message": "🔧 System: Connection established!"}}


def error(kind, loc, msg):
    return {"action": "error", "payload": [{"type": kind, "loc": loc, "msg": msg}]}


async def expect(ws, expected, label):
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
    if callable(expected):
        ok = expected(frame)
    else:
        ok = frame == expected
    if not ok:
        raise AssertionError(f"{label}: got {frame!r}, expected {expected!r}")
    print(f"ok   {label}")


async def still_open(ws, label):
    await ws.send('{"action":"ping"}')
    await expect(ws, {"action": "pong", "payload": None}, f"{label}: connection still open")


async def main(url):
    async with websockets.connect(url) as ws:
        await expect(ws, WELCOME, "welcome frame")

        await ws.send(json.dumps({"action": "user_message", "payload": {"message": "Hello"}}))
        await expect(ws, {"action": "system_echo", "payload": {"message": "🔧 System Echo: Hello"}}, "echo")

        await ws.send(json.dumps({"action": "ping"}))
        await expect(ws, {"action": "pong", "payload": None}, "pong")

        await ws.send("this is not json")
        await expect(
            ws,
            lambda f: f["action"] == "error"
            and f["payload"][0]["type"] == "json_invalid"
            and f["payload"][0]["loc"] == []
            and f["payload"][0]["msg"].startswith("Invalid JSON: "),
            "json_invalid for non-JSON text",
        )
        await still_open(ws, "json_invalid")

        await ws.send(b"\x00\x01binary")
        await expect(
            ws,
            error("json_invalid", [], "Invalid JSON: binary frames are not accepted, send JSON as a text frame"),
            "json_invalid for a binary frame",
        )
        await still_open(ws, "binary")

        await ws.send("[1, 2, 3]")
        await expect(ws, error("model_type", [], "Input should be an object"), "model_type for a JSON array")
        await still_open(ws, "model_type")

        await ws.send(json.dumps({"payload": {"message": "x"}}))
        await expect(
            ws,
            error("union_tag_not_found", [], "Unable to extract tag using discriminator 'action'"),
            "union_tag_not_found for no action",
        )
        await still_open(ws, "union_tag_not_found")

        await ws.send(json.dumps({"action": "nope"}))
        await expect(
            ws,
            error(
                "union_tag_invalid",
                [],
                "Input tag 'nope' found using 'action' does not match any of the expected tags: 'ping', 'user_message'",
            ),
            "union_tag_invalid for an unknown action",
        )
        await still_open(ws, "union_tag_invalid")

        await ws.send(json.dumps({"action": "user_message", "payload": {"msg": "typo"}}))
        await expect(
            ws,
            error("missing", ["user_message", "payload", "message"], "Field required"),
            "payload error with loc",
        )
        await still_open(ws, "payload error")

        await ws.send(json.dumps({"action": "user_message", "payload": {"message": "again"}, "ref": "r1"}))
        await expect(
            ws,
            {"action": "system_echo", "payload": {"message": "🔧 System Echo: again"}, "version": 1, "ref": "r1"},
            "ref echoed",
        )

    print("interop: all checks passed")


async def expect_shutdown(url):
    async with websockets.connect(url) as ws:
        await expect(ws, WELCOME, "welcome frame")
        print("READY", flush=True)
        try:
            frame = await asyncio.wait_for(ws.recv(), timeout=30)
            raise AssertionError(f"expected a close, got frame {frame!r}")
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code != 1001:
                raise AssertionError(f"expected close code 1001 on shutdown, got {code}")
    print("ok   close 1001 on Ctrl-C")


if __name__ == "__main__":
    if sys.argv[1] == "--expect-shutdown":
        asyncio.run(expect_shutdown(sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[1]))
