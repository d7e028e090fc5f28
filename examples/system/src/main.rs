//! Run with `cargo run -p chanx-example-system -- --addr 127.0.0.1:8000`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chanx_example_support::run("system", chanx_example_system::app()).await
}
