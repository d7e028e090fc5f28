use chanx_core::channel;

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[build_groups]
    async fn groups(&mut self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
