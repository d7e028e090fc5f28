//! Run with `cargo run --release -p chanx-example-bench -- --addr 127.0.0.1:8000`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chanx_example_support::run("bench", chanx_example_bench::app()).await
}
