//! Run with `cargo run -p chanx-example-topics -- --addr 127.0.0.1:8000 [--layer redis]`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chanx_example_support::run("topics", chanx_example_topics::app()).await
}
