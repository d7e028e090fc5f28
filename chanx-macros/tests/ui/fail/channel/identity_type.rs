use chanx_core::auth::{BearerToken, TokenVerifier};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, channel};

struct Tokens;

impl TokenVerifier for Tokens {
    type Identity = String;

    async fn verify(&self, token: &str, _: &Context) -> Option<String> {
        Some(token.to_owned())
    }
}

#[derive(Default)]
struct C;

#[channel(authenticator = BearerToken<Tokens>)]
impl C {
    #[ws_handler]
    async fn ping(&mut self, ctx: &Context, _: Ping) -> Pong {
        // The identity is the authenticator's: a `String`, not a `u64`.
        let _id: Option<&u64> = ctx.identity::<Self>();
        Pong
    }
}

fn main() {}
