//! Run with `cargo run --release -p chanx-example-bench -- --addr 127.0.0.1:8000`.
//!
//! The benchmark server: no per-connection rate limit (load generators send
//! as fast as replies come back) and room for many connections from the one
//! address the load generator has. Every byte budget stays at its default.
//! It serves its metrics at `GET /metrics` (Prometheus), unless
//! `CHANX_METRICS=off` is set: the benchmark measures both.

use chanx::ServerConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = ServerConfig::new()
        .rate_limit(None)
        .max_connections(100_000)
        .max_connections_per_address(100_000);
    let mut app = chanx_example_bench::app();
    if std::env::var("CHANX_METRICS").as_deref() != Ok("off") {
        app = match app.with_prometheus() {
            Ok(app) => app,
            Err(error) => {
                eprintln!("bench: cannot serve metrics: {error}");
                return std::process::ExitCode::FAILURE;
            }
        };
    }
    chanx_example_support::run_with_config("bench", app, config).await
}
