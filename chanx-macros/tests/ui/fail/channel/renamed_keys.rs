use chanx_core::messages::{Ping, Pong};
use chanx_core::channel;

#[derive(Default)]
struct C;

// Keys from before the Chanx-parity settings point at their new names.
#[channel(send_group_complete = true, send_authentication = false)]
impl C {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn main() {}
