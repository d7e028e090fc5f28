use chanx_core::auth::{BearerToken, TokenVerifier};
use chanx_core::{Context, channel};

struct User {
    id: u64,
}

struct Users;

impl TokenVerifier for Users {
    type Identity = User;

    async fn verify(&self, _: &str, _: &Context) -> Option<User> {
        Some(User { id: 1 })
    }
}

#[derive(Default)]
struct Room;

#[channel(authenticator = BearerToken<Users>, presence = "room_{room}")]
impl Room {}



fn main() {
    let _ = User { id: 2 }.id;
}
