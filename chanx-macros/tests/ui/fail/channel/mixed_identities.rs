use chanx_core::auth::{BearerToken, TokenVerifier};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, channel};

struct Names;

impl TokenVerifier for Names {
    type Identity = String;

    async fn verify(&self, token: &str, _: &Context) -> Option<String> {
        Some(token.to_owned())
    }
}

struct Numbers;

impl TokenVerifier for Numbers {
    type Identity = u64;

    async fn verify(&self, token: &str, _: &Context) -> Option<u64> {
        token.parse().ok()
    }
}

#[derive(Default)]
struct C;

// Every authenticator of a chain yields the same identity type.
#[channel(authenticators = [BearerToken<Names>, BearerToken<Numbers>])]
impl C {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn main() {}
