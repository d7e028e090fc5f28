//! Chanx's protocol settings: app-wide defaults on the [`Router`](crate::Router)
//! ([`Router::with_settings`](crate::Router::with_settings)), each
//! overridable per channel in `#[channel(...)]`.

use std::sync::Arc;

use crate::consumer::{Consumer, ConsumerConfig};

/// App-wide defaults of Chanx's settings (Django's `CHANX = {...}`), for
/// every channel of a router that does not set its own in
/// `#[channel(...)]`.
///
/// | setting | Chanx | default | per channel |
/// |---|---|---|---|
/// | [`send_completion`](Settings::send_completion) | `SEND_COMPLETION` | `false` | `#[channel(send_completion)]` |
/// | [`send_authentication_message`](Settings::send_authentication_message) | `SEND_AUTHENTICATION_MESSAGE` | `true` | `#[channel(send_authentication_message = false)]` |
/// | [`camelize`](Settings::camelize) | `CAMELIZE` | `false` | `#[channel(camelize)]` |
/// | [`log_websocket_message`](Settings::log_websocket_message) | `LOG_WEBSOCKET_MESSAGE` | `false` | `#[channel(log_websocket_message)]` |
/// | [`log_ignored_actions`](Settings::log_ignored_actions) | `LOG_IGNORED_ACTIONS` | none | `#[channel(log_ignored_actions = ["ping"])]` |
///
/// ```
/// use chanx_core::{Router, Settings};
///
/// let app = Router::new().with_settings(
///     Settings::new()
///         .send_completion(true)
///         .camelize(true)
///         .log_websocket_message(true)
///         .log_ignored_actions(["ping", "pong"]),
/// );
/// assert!(app.settings().camelize);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Send `complete` after each client frame that reached a handler's
    /// validation, `group_complete` after each broadcast relayed, and
    /// `event_complete` after each event handled.
    pub send_completion: bool,
    /// Send the `authentication` frame to consumers that authenticate
    /// (name an authenticator or permissions).
    pub send_authentication_message: bool,
    /// camelCase keys on the wire, both ways, and in the AsyncAPI document
    /// (values, such as actions, are unchanged).
    pub camelize: bool,
    /// Log every frame received and sent (target `chanx::frames`, level
    /// info: connection id, action, size; never the payload).
    pub log_websocket_message: bool,
    /// Actions not logged; `complete`, `group_complete` and
    /// `event_complete` never are.
    pub log_ignored_actions: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// Chanx's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self {
            send_completion: false,
            send_authentication_message: true,
            camelize: false,
            log_websocket_message: false,
            log_ignored_actions: Vec::new(),
        }
    }

    /// Sets [`Settings::send_completion`].
    #[must_use]
    pub fn send_completion(mut self, on: bool) -> Self {
        self.send_completion = on;
        self
    }

    /// Sets [`Settings::send_authentication_message`].
    #[must_use]
    pub fn send_authentication_message(mut self, on: bool) -> Self {
        self.send_authentication_message = on;
        self
    }

    /// Sets [`Settings::camelize`].
    #[must_use]
    pub fn camelize(mut self, on: bool) -> Self {
        self.camelize = on;
        self
    }

    /// Sets [`Settings::log_websocket_message`].
    #[must_use]
    pub fn log_websocket_message(mut self, on: bool) -> Self {
        self.log_websocket_message = on;
        self
    }

    /// Sets [`Settings::log_ignored_actions`].
    #[must_use]
    pub fn log_ignored_actions<I, S>(mut self, actions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.log_ignored_actions = actions.into_iter().map(Into::into).collect();
        self
    }
}

/// The settings in force for one consumer: its own where it sets them,
/// the router's otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Effective {
    pub(crate) send_completion: bool,
    pub(crate) send_authentication: bool,
    pub(crate) frames: Option<Arc<FrameLog>>,
}

/// What is done to each frame on its way in and out: camelCase keys, and
/// logging.
#[derive(Debug, Clone)]
pub(crate) struct FrameLog {
    pub(crate) camelize: bool,
    pub(crate) log: bool,
    ignored: Ignored,
}

#[derive(Debug, Clone)]
enum Ignored {
    Router(Arc<[String]>),
    Channel(&'static [&'static str]),
}

impl FrameLog {
    /// Whether frames of `action` are logged.
    pub(crate) fn logs(&self, action: &str) -> bool {
        self.log
            && !matches!(action, "complete" | "group_complete" | "event_complete")
            && !match &self.ignored {
                Ignored::Router(list) => list.iter().any(|ignored| ignored == action),
                Ignored::Channel(list) => list.contains(&action),
            }
    }
}

impl Effective {
    pub(crate) fn resolve<C: Consumer>(settings: &Settings, ignored: &Arc<[String]>) -> Self {
        Self::of(&C::CONFIG, settings, ignored)
    }

    pub(crate) fn of(
        config: &ConsumerConfig,
        settings: &Settings,
        ignored: &Arc<[String]>,
    ) -> Self {
        let camelize = config.camelize.unwrap_or(settings.camelize);
        let log = config
            .log_websocket_message
            .unwrap_or(settings.log_websocket_message);
        let frames = (camelize || log).then(|| {
            Arc::new(FrameLog {
                camelize,
                log,
                ignored: match config.log_ignored_actions {
                    Some(list) => Ignored::Channel(list),
                    None => Ignored::Router(Arc::clone(ignored)),
                },
            })
        });
        Self {
            send_completion: config.send_completion.unwrap_or(settings.send_completion),
            send_authentication: config.authenticates
                && config
                    .send_authentication_message
                    .unwrap_or(settings.send_authentication_message),
            frames,
        }
    }

    /// Whether keys are camelized on the wire.
    pub(crate) fn camelize(&self) -> bool {
        self.frames.as_ref().is_some_and(|frames| frames.camelize)
    }
}

/// The action of a frame the server renders (its first key), for logging.
pub(crate) fn action_of(frame: &str) -> &str {
    frame
        .strip_prefix(r#"{"action":""#)
        .and_then(|rest| rest.split_once('"'))
        .map_or("", |(action, _)| action)
}
