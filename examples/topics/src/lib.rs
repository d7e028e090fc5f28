//! Topics, as in Chanx's topic guide: one socket at `/ws/hub` subscribes to
//! many discussions (`discussion:{pk}`), each with its own handlers; the
//! same topic is served standalone at `/ws/discussion/{pk}`; an HTTP route
//! pushes new replies to a discussion's subscribers, on every server
//! process with `--layer redis`.
//!
//! ```text
//! → {"version":1,"topic":"discussion:5","ref":"1","action":"subscribe"}
//! ← {"action":"subscribed","payload":null,"version":1,"topic":"discussion:5","ref":"1"}
//! → {"version":1,"topic":"discussion:5","ref":"2","action":"reply","payload":"hello"}
//! ← {"action":"reply_created","payload":"hello on 5","version":1,"topic":"discussion:5","ref":"2"}
//!   POST /discussions/5/replies  "from http"
//! ← {"action":"new_reply","payload":"from http","version":1,"topic":"discussion:5","seq":1}
//! ```
//!
//! Discussion 403 is private: subscribing to `discussion:403` is refused
//! with `{"reason":"unauthorized",…}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chanx::http::{HttpRequest, HttpResponse};
use chanx::messages::{Ping, Pong};
use chanx::topic::{Standalone, TopicContext};
use chanx::{Message, Router, channel, topic};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// A reply a subscriber posts to the discussion it addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "reply")]
pub struct ReplyMessage(pub String);

/// The confirmation of a posted reply: `"<text> on <pk>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "reply_created")]
pub struct ReplyCreatedMessage(pub String);

/// A reply posted over HTTP, pushed to the discussion's subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "new_reply")]
pub struct NewReplyEvent(pub String);

/// One discussion's stream of replies.
#[derive(Debug, Default)]
pub struct DiscussionTopic;

/// One discussion: replies posted by subscribers, and replies pushed from
/// the HTTP route.
#[topic(pattern = "discussion:{pk}", tags = ["discussions"])]
impl DiscussionTopic {
    /// Discussion 403 is private.
    #[authorize]
    async fn authorize(ctx: &TopicContext) -> bool {
        ctx.topic_param("pk") != Some("403")
    }

    /// Post a reply to this discussion.
    #[ws_handler(summary = "Post a reply")]
    async fn reply(&mut self, ctx: &TopicContext, message: ReplyMessage) -> ReplyCreatedMessage {
        let pk = ctx.topic_param("pk").unwrap_or_default();
        ReplyCreatedMessage(format!("{} on {pk}", message.0))
    }

    /// Relay a reply posted over HTTP.
    #[event_handler(summary = "Relay a new reply")]
    async fn new_reply(&mut self, event: NewReplyEvent) -> NewReplyEvent {
        event
    }
}

/// The connection that multiplexes discussions.
#[derive(Debug, Default)]
pub struct HubConsumer;

/// One socket, many discussions.
#[channel(topics = [DiscussionTopic], tags = ["hub"])]
impl HubConsumer {
    /// Connectivity check, outside any topic.
    #[ws_handler(summary = "Handle ping requests")]
    async fn ping(&mut self, _message: Ping) -> Pong {
        Pong
    }
}

/// The most discussions this process numbers replies for; a reply to one
/// more is refused with 503 (a bound on what HTTP clients can make the
/// server hold).
pub const MAX_DISCUSSIONS: usize = 10_000;

/// The last `seq` given to each discussion in this process: one writer
/// per discussion, so clients can spot gaps. (With several processes, each
/// numbers the replies posted to it; Chanx leaves `seq` to the caller for
/// that reason.)
#[derive(Debug, Clone)]
pub struct Sequences {
    table: Arc<Mutex<HashMap<u64, i64>>>,
    capacity: usize,
}

impl Default for Sequences {
    fn default() -> Self {
        Self::new(MAX_DISCUSSIONS)
    }
}

impl Sequences {
    /// A table numbering at most `capacity` discussions.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            table: Arc::default(),
            capacity,
        }
    }

    /// The next `seq` of discussion `pk`, or `None` when the table is full.
    pub fn next(&self, pk: u64) -> Option<i64> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if !table.contains_key(&pk) && table.len() >= self.capacity {
            return None;
        }
        let seq = table.entry(pk).or_insert(0);
        *seq += 1;
        Some(*seq)
    }
}

/// `POST /discussions/{pk}/replies` with a JSON string body: pushes
/// `new_reply` to `discussion:{pk}` with the next `seq`; answers 202 with
/// `{"topic": …, "seq": …}`.
pub async fn post_reply(request: HttpRequest) -> HttpResponse {
    let pk: u64 = match request.param_as("pk") {
        Ok(pk) => pk,
        Err(error) => return HttpResponse::text(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let text: String = match request.json() {
        Ok(text) => text,
        Err(error) => return error.into(),
    };
    let Some(seq) = request
        .state::<Sequences>()
        .and_then(|sequences| sequences.next(pk))
    else {
        return HttpResponse::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many discussions in this process",
        );
    };
    let topic = format!("discussion:{pk}");
    let sent = request
        .layer()
        .topic::<DiscussionTopic>(&topic)
        .send(&NewReplyEvent(text))
        .seq(seq)
        .await;
    match sent {
        Ok(()) => HttpResponse::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"topic": topic, "seq": seq}),
        ),
        Err(error) => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

/// The application: the hub, the standalone discussion route and the HTTP
/// route that pushes replies.
pub fn app() -> Router {
    Router::new()
        .route::<HubConsumer>("/ws/hub")
        .route::<Standalone<DiscussionTopic>>("/ws/discussion/{pk}")
        .http(Method::POST, "/discussions/{pk}/replies", post_reply)
        .with_state(Sequences::default())
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("Topics", env!("CARGO_PKG_VERSION"))
                .description("Chanx topics: many discussions multiplexed over one socket.")
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}

#[cfg(test)]
mod tests {
    use super::Sequences;

    #[test]
    fn sequences_count_per_discussion_and_are_bounded() {
        let sequences = Sequences::new(2);
        assert_eq!(sequences.next(1), Some(1));
        assert_eq!(sequences.next(1), Some(2));
        assert_eq!(sequences.next(2), Some(1));
        // A third discussion does not fit; the known ones go on.
        assert_eq!(sequences.next(3), None);
        assert_eq!(sequences.next(2), Some(2));
    }
}
