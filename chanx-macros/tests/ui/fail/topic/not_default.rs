use chanx_core::{channel, topic};

struct NoDefault;

#[topic(pattern = "t:{id}")]
impl NoDefault {}

#[derive(Default)]
struct NotATopic;

#[derive(Default)]
struct Hub;

#[channel(topics = [NotATopic])]
impl Hub {}

#[derive(Default)]
struct BadAuthorize;

#[topic(pattern = "b:{id}")]
impl BadAuthorize {
    #[authorize]
    async fn may() -> u8 {
        1
    }
}

fn main() {}
