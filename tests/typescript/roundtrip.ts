// A Node program written against the generated clients, type-checked with
// `tsc --strict`, then run against the running `chat` and `system`
// examples: alice and bob exchange a message, a request gets its typed
// reply, a server error rejects as a typed `ServerError`.
//
//   node dist/tests/typescript/roundtrip.js ws://127.0.0.1:CHAT ws://127.0.0.1:SYSTEM

import { ChatClient, type ChatIncoming, type ChatMessage, ServerError } from "../../examples/chat/client/index.js";
// Each generated client has its own runtime: the system's errors are its
// own `ServerError`.
import { SystemClient, ServerError as SystemServerError } from "../../examples/system/client/index.js";
import { HubClient, type NewReplyEvent, ServerError as TopicsServerError } from "../../examples/topics/client/index.js";

function check(condition: boolean, what: string): void {
  if (!condition) {
    console.error(`FAIL ${what}`);
    process.exit(1);
  }
  console.log(`ok   ${what}`);
}

// The compiler refuses what the server would refuse. Never called: it
// only has to type-check, with each line's error expected.
export function refusedByTheCompiler(client: ChatClient): void {
  // @ts-expect-error: `message` is required in the payload.
  client.send({ action: "new_chat_message", payload: {} });
  // @ts-expect-error: `message` is a string.
  client.send({ action: "new_chat_message", payload: { message: 5 } });
  // @ts-expect-error: the chat channel does not receive `user_message`.
  client.send({ action: "user_message", payload: { message: "hi" } });
  // @ts-expect-error: a handler of `chat_message` gets a ChatMessage, which has no `text`.
  client.on("chat_message", (message) => message.payload.text);
}

// The incoming union narrows on `action`.
export function describe(message: ChatIncoming): string {
  switch (message.action) {
    case "chat_message":
      return `${message.payload.sender}: ${message.payload.message}`;
    case "joined_room":
      return `joined ${message.payload.room}`;
    case "authentication":
      return `authentication ${message.payload.status_code}`;
    case "presence_state":
      return `present: ${Object.keys(message.payload).join(", ")}`;
    case "presence_diff":
      return `joined: ${Object.keys(message.payload.joins).join(", ")}; left: ${Object.keys(message.payload.leaves).join(", ")}`;
    case "error":
    case "pong":
      return message.action;
  }
}

async function chat(base: string): Promise<void> {
  const alice = await ChatClient.connect(base, { room: "lobby" }, { query: { token: "alice-token" } });
  const aliceSeesBob = new Promise<void>((resolve) => {
    alice.on("presence_diff", (diff) => {
      if ("bob" in diff.payload.joins) resolve();
    });
  });
  const bob = await ChatClient.connect(base, { room: "lobby" }, { query: { token: "bob-token" } });
  const auth = await alice.authenticated();
  check(auth.status_code === 200, "alice is authenticated");
  await bob.authenticated();
  const seen = await Promise.race([
    aliceSeesBob.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
  ]);
  check(seen, "alice's presence_diff shows bob joining the room, typed");

  const received = new Promise<ChatMessage>((resolve) => {
    bob.on("chat_message", (message) => {
      // Typed by the action: `message.payload.sender` is a string.
      if (message.payload.message === "hello bob") resolve(message);
    });
  });
  alice.send({ action: "new_chat_message", payload: { message: "hello bob" } });
  const message = await received;
  check(
    message.payload.sender === "alice" && message.payload.room === "lobby",
    "bob receives alice's chat_message, typed",
  );

  const pong = await alice.request({ action: "ping" });
  check(pong.action === "pong", "ping is answered with a typed pong, matched by ref");

  const refused = await ChatClient.connect(base, { room: "kitchen" }, { query: { token: "bob-token" } });
  const rejection = await refused.authenticated().then(
    () => undefined,
    (error: unknown) => error,
  );
  check(rejection instanceof ServerError && rejection.status === 403, "a member of no room is refused with 403");
  const closed = await refused.closed;
  check(closed.code === 4403, `the refusal closes with 4403 (${closed.code})`);

  await alice.close();
  await bob.close();
}

async function system(base: string): Promise<void> {
  const client = await SystemClient.connect(base);
  const echo = await client.request({ action: "user_message", payload: { message: "hi" } });
  check(echo.payload.message === "🔧 System Echo: hi", "user_message gets its typed system_echo");
  // A frame the server rejects: sent untyped on purpose, it rejects with
  // the server's validation errors.
  const error = await client
    .request({ action: "user_message", payload: { message: 5 } } as never)
    .then(
      () => undefined,
      (failure: unknown) => failure,
    );
  check(
    error instanceof SystemServerError && error.items[0]?.type === "string_type",
    "an invalid payload rejects with the server's typed error",
  );
  await client.close();
}

// Topics on one socket: typed handles, frames routed by topic.
async function topics(base: string): Promise<void> {
  const hub = await HubClient.connect(base);
  const five = hub.discussionTopic({ pk: "5" });
  const subscribed = await five.subscribe();
  check(subscribed.action === "subscribed" && subscribed.topic === "discussion:5", "discussion:5 is subscribed");

  const refused = await hub
    .discussionTopic({ pk: "403" })
    .subscribe()
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  check(
    refused instanceof TopicsServerError && (refused.payload as { reason?: string }).reason === "unauthorized",
    "discussion:403 is refused as unauthorized",
  );

  const created = await five.request({ action: "reply", payload: "hello" });
  check(created.action === "reply_created" && created.payload === "hello on 5", "a reply to the topic gets its typed reply_created");

  const pushed = new Promise<NewReplyEvent>((resolve) => five.on("new_reply", resolve));
  const http = base.replace(/^ws/, "http");
  const posted = await fetch(`${http}/discussions/5/replies`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify("from node"),
  });
  check(posted.status === 202, `POST /discussions/5/replies is accepted (${posted.status})`);
  const event = await pushed;
  check(event.payload === "from node", "the pushed new_reply reaches the topic's handle");

  const pong = await hub.request({ action: "ping" });
  check(pong.action === "pong", "the hub's own ping is answered outside any topic");
  const left = await five.unsubscribe();
  check(left.action === "unsubscribed", "discussion:5 is unsubscribed");
  await hub.close();
}

const [chatBase, systemBase, topicsBase] = process.argv.slice(2);
if (!chatBase || !systemBase || !topicsBase) {
  console.error("usage: node roundtrip.js ws://CHAT ws://SYSTEM ws://TOPICS");
  process.exit(2);
}
await chat(chatBase);
await system(systemBase);
await topics(topicsBase);
