use chanx_core::channel;

#[derive(Default)]
struct Room;

#[channel(presence = "room_{room}")]
impl Room {
    #[presence_meta]
    async fn meta(&mut self) -> u8 {
        1
    }
}

#[derive(Default)]
struct BadTemplate;

#[channel(presence = "room.{room}")]
impl BadTemplate {}

#[derive(Default)]
struct NoPresence;

#[channel]
impl NoPresence {
    #[presence_meta]
    async fn meta(&self) -> u8 {
        1
    }
}

#[derive(Default)]
struct NotAHook;

#[channel]
impl NotAHook {
    #[presence_meta]
    async fn meta(&self) {}
}

fn main() {}
