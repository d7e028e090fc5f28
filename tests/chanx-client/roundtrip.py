"""Round trips with the typed clients that Chanx's own generator
(`chanx generate-client`, Chanx 2.13) writes from the examples' AsyncAPI
documents: the documents are usable by Chanx users' tooling as they are.

Usage (scripts/test generates the packages first):
    python roundtrip.py system ws://127.0.0.1:PORT
    python roundtrip.py chat ws://127.0.0.1:PORT

The generated packages are imported from `generated.system_client` and
`generated.chat_client` (PYTHONPATH must hold their parent).
"""

import asyncio
import sys


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAIL {what}")


async def system(base_url):
    from generated.system_client.system import SystemClient
    from generated.system_client.system import messages as m

    class RoundTrip(SystemClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.received = []
            self.failure = None

        async def send_init_message(self):
            await self.send_message(m.Ping())
            await self.send_message(m.UserMessage(payload=m.MessagePayload(message="hi")))

        async def handle_message(self, message):
            self.received.append(message)
            if isinstance(message, m.SystemEchoMessage) and message.payload.message.endswith("hi"):
                await self.disconnect()
            elif isinstance(message, m.ErrorMessage):
                self.failure = message
                await self.disconnect()

        async def handle_invalid_message(self, invalid):
            self.failure = invalid
            await self.disconnect()

    client = RoundTrip(base_url)
    await asyncio.wait_for(client.handle(), timeout=10)
    check(client.failure is None, f"system: unexpected frame {client.failure!r}")
    kinds = [type(message).__name__ for message in client.received]
    # The greeting, then the pong and the echo, each a typed model.
    check(kinds == ["SystemEchoMessage", "Pong", "SystemEchoMessage"], f"system: received {kinds}")
    check(
        client.received[-1].payload.message == "🔧 System Echo: hi",
        f"system: echo {client.received[-1]!r}",
    )
    print("ok   generated Python client: system round trip", kinds)


async def chat(base_url):
    from generated.chat_client.chat import ChatClient
    from generated.chat_client.chat import messages as m

    class Member(ChatClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.received = []
            self.failure = None

        async def handle_message(self, message):
            self.received.append(message)
            if isinstance(message, m.JoinedRoom):
                await self.send_message(m.NewChatMessage(payload=m.NewChatMessagePayload(message="hello")))
            elif isinstance(message, m.ChatMessage):
                await self.disconnect()
            elif isinstance(message, m.ErrorMessage):
                self.failure = message
                await self.disconnect()

        async def handle_invalid_message(self, invalid):
            self.failure = invalid
            await self.disconnect()

    # DRF's `Token` keyword, as Chanx users send it.
    client = Member(base_url, headers={"Authorization": "Token alice-token"}, path_params={"room": "lobby"})
    await asyncio.wait_for(client.handle(), timeout=10)
    check(client.failure is None, f"chat: unexpected frame {client.failure!r}")
    kinds = [type(message).__name__ for message in client.received]
    check(kinds == ["Authentication", "JoinedRoom", "ChatMessage"], f"chat: received {kinds}")
    authentication, joined, said = client.received
    check(authentication.payload.status_code == 200, f"chat: {authentication!r}")
    check(authentication.payload.data == {"detail": "OK"}, f"chat: {authentication!r}")
    check(joined.payload.room == "lobby", f"chat: {joined!r}")
    check(
        (said.payload.sender, said.payload.room, said.payload.message) == ("alice", "lobby", "hello"),
        f"chat: {said!r}",
    )
    print("ok   generated Python client: chat round trip", kinds)


if __name__ == "__main__":
    example, url = sys.argv[1], sys.argv[2]
    asyncio.run({"system": system, "chat": chat}[example](url))
