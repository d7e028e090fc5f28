use chanx_core::topic::TopicContext;
use chanx_core::{Context, channel, topic};

#[derive(Default)]
struct T;

#[topic(pattern = "t:{id}")]
impl T {
    #[authorize]
    async fn may(&self, ctx: &TopicContext) -> bool {
        let _ = ctx;
        true
    }

    #[on_connect]
    async fn new(ctx: &Context) -> Self {
        let _ = ctx;
        T
    }

    #[on_subscribe]
    async fn first(&mut self) {}

    #[on_subscribe]
    async fn second(&mut self) {}
}

#[derive(Default)]
struct U;

#[topic(pattern = "u:{id}")]
impl U {
    #[authorize]
    async fn may(ctx: &TopicContext) {
        let _ = ctx;
    }
}

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[authorize]
    async fn may(ctx: &TopicContext) -> bool {
        let _ = ctx;
        true
    }
}

fn main() {}
