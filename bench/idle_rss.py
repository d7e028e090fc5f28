"""Server memory per idle WebSocket connection of an example binary.

Starts BINARY on 127.0.0.1:PORT, warms it with 50 connections, then opens
N connections to PATH (from 127.0.x.1 addresses, 200 each, under the
per-address cap), waits for each one's first frame, and prints the growth
of the server's resident memory divided by N.

Usage (with the interop venv of scripts/test):
    target/interop-venv/bin/python bench/idle_rss.py target/release/axum-chat /ws/chat/lobby 3000 18812
"""

import asyncio
import os
import subprocess
import sys

import websockets


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def main(binary, path, count, port):
    server = subprocess.Popen([binary, "--addr", f"127.0.0.1:{port}"], env={**os.environ, "RUST_LOG": "error"})
    try:
        await asyncio.sleep(1.0)
        url = f"ws://127.0.0.1:{port}{path}"
        warm = [await websockets.connect(url, ping_interval=None) for _ in range(50)]
        for client in warm:
            await client.recv()
            await client.close()
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        clients = []
        for index in range(count):
            client = await websockets.connect(url, ping_interval=None, local_addr=(f"127.0.{index // 200 + 1}.1", 0))
            await client.recv()
            clients.append(client)
        await asyncio.sleep(1.0)
        after = rss_kib(server.pid)
        print(f"{os.path.basename(binary)}: {count} idle connections, {(after - before) / count:.1f} KiB per connection")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
