"""Round trips with the typed clients that Chanx's own generator
(`chanx generate-client`, Chanx 2.13) writes from the examples' AsyncAPI
documents: the documents are usable by Chanx users' tooling as they are.

Usage (scripts/test generates the packages first):
    python roundtrip.py system ws://127.0.0.1:PORT
    python roundtrip.py chat ws://127.0.0.1:PORT
    python roundtrip.py topics ws://127.0.0.1:PORT

The generated packages are imported from `generated.system_client` and
`generated.chat_client` (PYTHONPATH must hold their parent).
"""

import asyncio
import json
import sys
import urllib.request


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
    check(
        kinds == ["Authentication", "JoinedRoom", "PresenceState", "PresenceDiff", "ChatMessage"],
        f"chat: received {kinds}",
    )
    authentication, joined, state, own, said = client.received
    check(state.payload == {}, f"chat: presence_state {state!r}")
    joins = own.payload.joins
    check(list(joins) == ["alice"], f"chat: presence_diff {own!r}")
    check(authentication.payload.status_code == 200, f"chat: {authentication!r}")
    check(authentication.payload.data == {"detail": "OK"}, f"chat: {authentication!r}")
    check(joined.payload.room == "lobby", f"chat: {joined!r}")
    check(
        (said.payload.sender, said.payload.room, said.payload.message) == ("alice", "lobby", "hello"),
        f"chat: {said!r}",
    )
    print("ok   generated Python client: chat round trip", kinds)


async def topics(base_url):
    """The generated topic connection (`HubClient`) and its handles, used
    as Chanx's topic guide uses them: subscribe, request, pushed events,
    refusals, unsubscribe."""
    from generated.topics_client.hub.client import HubClient
    from generated.topics_client.hub import messages as hub
    from generated.topics_client.hub_discussion_topic.client import HubDiscussionTopicClient
    from generated.topics_client.hub_discussion_topic import messages as m

    http_base = "http" + base_url[len("ws"):]
    loop = asyncio.get_running_loop()

    def post_reply(pk, text):
        request = urllib.request.Request(
            f"{http_base}/discussions/{pk}/replies",
            data=json.dumps(text).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())

    class Discussion(HubDiscussionTopicClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.raw = []
            self.pushed = loop.create_future()

        async def dispatch_frame(self, py_object):
            self.raw.append(py_object)
            await super().dispatch_frame(py_object)

        async def handle_message(self, message):
            if isinstance(message, m.NewReplyEvent) and not self.pushed.done():
                self.pushed.set_result(message)

    class Hub(HubClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.steps = []
            self.failure = None
            self.pong = loop.create_future()

        async def handle_message(self, message):
            if isinstance(message, hub.Pong) and not self.pong.done():
                self.pong.set_result(message)

        async def send_init_message(self):
            try:
                await self.script()
            except BaseException as error:  # reported by the caller
                self.failure = error
            finally:
                await self.disconnect()

        async def script(self):
            five = self.topic(Discussion, pk=5)
            reply = await five.subscribe()
            check(reply.action == "subscribed", f"topics: subscribe {reply!r}")
            self.steps.append("subscribed")

            refused = await self.discussion_topic(pk=403).subscribe()
            check(refused.action == "error", f"topics: 403 {refused!r}")
            check(refused.payload.reason == "unauthorized", f"topics: 403 {refused!r}")
            self.steps.append("refused")

            created = await five.request(m.ReplyMessage(payload="hello"))
            check(isinstance(created, m.ReplyCreatedMessage), f"topics: reply {created!r}")
            check(created.payload == "hello on 5", f"topics: reply {created!r}")
            self.steps.append("reply_created")

            status, body = await loop.run_in_executor(None, post_reply, 5, "from http")
            check(status == 202 and body["topic"] == "discussion:5", f"topics: POST {status} {body}")
            pushed = await asyncio.wait_for(five.pushed, 5)
            check(pushed.payload == "from http", f"topics: pushed {pushed!r}")
            frame = next(raw for raw in five.raw if raw.get("action") == "new_reply")
            check(frame.get("seq") == body["seq"], f"topics: seq {frame} vs {body}")
            self.steps.append("new_reply")

            await self.send_message(hub.Ping())
            await asyncio.wait_for(self.pong, 5)
            self.steps.append("pong")

            left = await five.unsubscribe()
            check(left.action == "unsubscribed", f"topics: unsubscribe {left!r}")
            self.steps.append("unsubscribed")

    client = Hub(base_url)
    await asyncio.wait_for(client.handle(), timeout=15)
    if client.failure is not None:
        raise SystemExit(f"FAIL topics: {client.failure!r}")
    steps = ["subscribed", "refused", "reply_created", "new_reply", "pong", "unsubscribed"]
    check(client.steps == steps, f"topics: steps {client.steps}")
    print("ok   generated Python client: topics round trip", client.steps)


if __name__ == "__main__":
    example, url = sys.argv[1], sys.argv[2]
    asyncio.run({"system": system, "chat": chat, "topics": topics}[example](url))
