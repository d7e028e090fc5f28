//! Metrics, through the [`metrics`](https://docs.rs/metrics) crate's
//! facade: with no recorder installed they cost an atomic load and a
//! branch; install any recorder (or use [`Router::with_prometheus`](crate::Router::with_prometheus),
//! feature `prometheus`) before serving to collect them.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `chanx_connections_active` | gauge | | WebSocket connections open now |
//! | `chanx_connections_total` | counter | | WebSocket connections accepted |
//! | `chanx_connections_closed_total` | counter | `code` | connections ended, by the close code the server sent or answered (`application` for a 3000–4999 code the client chose) |
//! | `chanx_frames_received_total` | counter | `channel` | data frames (messages) received |
//! | `chanx_frames_sent_total` | counter | `channel` | text frames queued or written to clients |
//! | `chanx_bytes_received_total` | counter | | payload bytes of the messages received |
//! | `chanx_bytes_sent_total` | counter | | payload bytes of the text frames sent |
//! | `chanx_handler_duration_seconds` | histogram | `channel`, `action` | time in a `#[ws_handler]`, validation included |
//! | `chanx_rejected_frames_total` | counter | `kind` | frames that never reached a handler: the pydantic kind of the error (`json_invalid`, `union_tag_invalid`, …), or `rate_limited` |
//! | `chanx_slow_consumer_closes_total` | counter | | connections closed because their queues were full |
//! | `chanx_layer_publish_failures_total` | counter | | sends the channel layer could not publish to other processes |
//! | `chanx_redis_reconnects_total` | counter | | times the Redis layer's subscription came back after a loss |
//!
//! Handles for a channel's counters and histograms are registered when its
//! first connection opens: install the recorder before serving. With
//! tracing at `debug`, each message is handled inside a `message` span with
//! its `channel` and `action`.

use std::time::Duration;

use ::metrics::{Counter, Histogram};

use crate::consumer::{ChannelMeta, actions_of};

/// `chanx_connections_active`.
pub const CONNECTIONS_ACTIVE: &str = "chanx_connections_active";
/// `chanx_connections_total`.
pub const CONNECTIONS_TOTAL: &str = "chanx_connections_total";
/// `chanx_connections_closed_total{code}`.
pub const CONNECTIONS_CLOSED: &str = "chanx_connections_closed_total";
/// `chanx_frames_received_total{channel}`.
pub const FRAMES_RECEIVED: &str = "chanx_frames_received_total";
/// `chanx_frames_sent_total{channel}`.
pub const FRAMES_SENT: &str = "chanx_frames_sent_total";
/// `chanx_bytes_received_total`.
pub const BYTES_RECEIVED: &str = "chanx_bytes_received_total";
/// `chanx_bytes_sent_total`.
pub const BYTES_SENT: &str = "chanx_bytes_sent_total";
/// `chanx_handler_duration_seconds{channel,action}`.
pub const HANDLER_DURATION: &str = "chanx_handler_duration_seconds";
/// `chanx_rejected_frames_total{kind}`.
pub const REJECTED_FRAMES: &str = "chanx_rejected_frames_total";
/// `chanx_slow_consumer_closes_total`.
pub const SLOW_CONSUMER_CLOSES: &str = "chanx_slow_consumer_closes_total";
/// `chanx_layer_publish_failures_total`.
pub const LAYER_PUBLISH_FAILURES: &str = "chanx_layer_publish_failures_total";
/// `chanx_redis_reconnects_total`.
pub const REDIS_RECONNECTS: &str = "chanx_redis_reconnects_total";

/// The handles of one channel, shared by its connections.
#[derive(Debug)]
pub(crate) struct ChannelMetrics {
    pub(crate) frames_received: Counter,
    pub(crate) bytes_received: Counter,
    pub(crate) frames_sent: Counter,
    pub(crate) bytes_sent: Counter,
    handlers: Vec<(&'static str, Histogram)>,
}

impl ChannelMetrics {
    pub(crate) fn new(channel: &'static ChannelMeta) -> Self {
        let name = channel.name;
        Self {
            frames_received: ::metrics::counter!(FRAMES_RECEIVED, "channel" => name),
            bytes_received: ::metrics::counter!(BYTES_RECEIVED),
            frames_sent: ::metrics::counter!(FRAMES_SENT, "channel" => name),
            bytes_sent: ::metrics::counter!(BYTES_SENT),
            handlers: actions_of(channel.handlers, crate::consumer::HandlerKind::Ws)
                .map(|action| {
                    (
                        action,
                        ::metrics::histogram!(HANDLER_DURATION, "channel" => name, "action" => action),
                    )
                })
                .collect(),
        }
    }

    /// Records a message of `bytes` received.
    pub(crate) fn received(&self, bytes: usize) {
        self.frames_received.increment(1);
        self.bytes_received.increment(bytes as u64);
    }

    /// Records a text frame of `bytes` sent.
    pub(crate) fn sent(&self, bytes: usize) {
        self.frames_sent.increment(1);
        self.bytes_sent.increment(bytes as u64);
    }

    /// Records the time a handler of `action` took (an action no handler
    /// takes is not recorded: its label would be the client's).
    pub(crate) fn handled(&self, action: &str, took: Duration) {
        if let Some((_, histogram)) = self.handlers.iter().find(|(known, _)| *known == action) {
            histogram.record(took.as_secs_f64());
        }
    }
}

/// A frame refused before any handler.
pub(crate) fn rejected(kind: &'static str) {
    ::metrics::counter!(REJECTED_FRAMES, "kind" => kind).increment(1);
}

/// A connection opened.
pub(crate) fn connection_opened() {
    ::metrics::gauge!(CONNECTIONS_ACTIVE).increment(1.0);
    ::metrics::counter!(CONNECTIONS_TOTAL).increment(1);
}

/// A connection ended with close code `code`. A code the client chose in
/// the application range (3000–4999) is counted as `application`, so a
/// client cannot mint series.
pub(crate) fn connection_closed(code: u16, by_client: bool, slow: bool) {
    ::metrics::gauge!(CONNECTIONS_ACTIVE).decrement(1.0);
    let label = if by_client && code >= 3000 {
        "application".to_owned()
    } else {
        code.to_string()
    };
    ::metrics::counter!(CONNECTIONS_CLOSED, "code" => label).increment(1);
    if slow {
        ::metrics::counter!(SLOW_CONSUMER_CLOSES).increment(1);
    }
}

/// Describes every metric, for a recorder that shows descriptions.
pub fn describe() {
    ::metrics::describe_gauge!(CONNECTIONS_ACTIVE, "WebSocket connections open now");
    ::metrics::describe_counter!(CONNECTIONS_TOTAL, "WebSocket connections accepted");
    ::metrics::describe_counter!(
        CONNECTIONS_CLOSED,
        "WebSocket connections ended, by close code"
    );
    ::metrics::describe_counter!(FRAMES_RECEIVED, "Messages received, by channel");
    ::metrics::describe_counter!(FRAMES_SENT, "Text frames sent, by channel");
    ::metrics::describe_counter!(BYTES_RECEIVED, "Payload bytes of the messages received");
    ::metrics::describe_counter!(BYTES_SENT, "Payload bytes of the text frames sent");
    ::metrics::describe_histogram!(
        HANDLER_DURATION,
        ::metrics::Unit::Seconds,
        "Time in a ws_handler, by channel and action"
    );
    ::metrics::describe_counter!(
        REJECTED_FRAMES,
        "Frames refused before any handler, by kind"
    );
    ::metrics::describe_counter!(
        SLOW_CONSUMER_CLOSES,
        "Connections closed because their queues were full"
    );
    ::metrics::describe_counter!(
        LAYER_PUBLISH_FAILURES,
        "Channel layer sends that could not reach other processes"
    );
    ::metrics::describe_counter!(
        REDIS_RECONNECTS,
        "Times the Redis subscription came back after a loss"
    );
}

#[cfg(feature = "prometheus")]
pub use prometheus::PrometheusError;

#[cfg(feature = "prometheus")]
pub(crate) mod prometheus {
    use std::sync::OnceLock;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    /// The Prometheus recorder could not be installed.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum PrometheusError {
        /// Another `metrics` recorder is installed in this process: serve its
        /// metrics yourself, or install none before `with_prometheus`.
        #[error("another metrics recorder is already installed in this process")]
        RecorderTaken,
        /// The exporter refused its configuration.
        #[error("the Prometheus exporter could not be built: {0}")]
        Build(String),
    }

    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The process's Prometheus recorder, installed on first use.
    pub(crate) fn handle() -> Result<PrometheusHandle, PrometheusError> {
        if let Some(handle) = HANDLE.get() {
            return Ok(handle.clone());
        }
        let _once = INSTALL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(handle) = HANDLE.get() {
            return Ok(handle.clone());
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(super::HANDLER_DURATION.to_owned()),
                &[
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .map_err(|error| PrometheusError::Build(error.to_string()))?
            .install_recorder()
            .map_err(|error| match error {
                metrics_exporter_prometheus::BuildError::FailedToSetGlobalRecorder(_) => {
                    PrometheusError::RecorderTaken
                }
                other => PrometheusError::Build(other.to_string()),
            })?;
        super::describe();
        Ok(HANDLE.get_or_init(|| handle).clone())
    }
}
