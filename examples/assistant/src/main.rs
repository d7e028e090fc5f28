//! Run with `cargo run -p chanx-example-assistant -- --addr 127.0.0.1:8000`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chanx_example_support::run("assistant", chanx_example_assistant::app()).await
}
