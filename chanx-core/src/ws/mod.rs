//! The WebSocket layer: close codes (public), and the frame reader, the
//! byte-bounded outbound queue and the writer that serve each connection.

use std::fmt;

pub(crate) mod encode;
pub(crate) mod outbox;
pub(crate) mod read;
pub(crate) mod write;

/// A WebSocket close code (RFC 6455 §7.4).
///
/// Chanx reports an authentication refusal as `4000 + status`, so a refused
/// connection closes with [`CloseCode::application`]`(4401)` or `(4403)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the server is going away (shutting down).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the WebSocket protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1007: a text frame was not valid UTF-8.
    pub const INVALID_DATA: Self = Self(1007);
    /// 1008: a message violated the server's policy.
    pub const POLICY: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 4401: authentication failed (Chanx's `4000 + 401`).
    pub const UNAUTHORIZED: Self = Self(4401);
    /// 4403: the client is authenticated but not allowed (Chanx's
    /// `4000 + 403`).
    pub const FORBIDDEN: Self = Self(4403);

    /// An application code in 4000..=4999, such as 4401 or 4403.
    ///
    /// # Errors
    ///
    /// Returns the code back when it is outside 4000..=4999.
    pub const fn application(code: u16) -> Result<Self, u16> {
        if code >= 4000 && code <= 4999 {
            Ok(Self(code))
        } else {
            Err(code)
        }
    }

    /// A code received from a peer, if it may be sent back on the wire
    /// (1005, 1006 and 1015 may not, nor unassigned ones).
    pub(crate) fn from_wire(code: u16) -> Option<Self> {
        Self::try_from(code).ok()
    }

    /// The numeric code.
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A number that is not a close code a frame may carry: what
/// `CloseCode::try_from(u16)` returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} is not a close code a frame may carry; use 1000-1003, 1007-1013 or 3000-4999 \
     (application codes: 4000-4999)"
)]
pub struct InvalidCloseCode(pub u16);

impl TryFrom<u16> for CloseCode {
    type Error = InvalidCloseCode;

    /// A code as it may appear in a close frame: 1000-1003, 1007-1013
    /// (RFC 6455 and the IANA registry) or 3000-4999. 1005, 1006 and 1015
    /// are reserved for reporting and never sent.
    fn try_from(code: u16) -> Result<Self, InvalidCloseCode> {
        match code {
            1000..=1003 | 1007..=1013 | 3000..=4999 => Ok(Self(code)),
            other => Err(InvalidCloseCode(other)),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}
