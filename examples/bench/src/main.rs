//! Run with `cargo run --release -p chanx-example-bench -- --addr 127.0.0.1:8000`.
//!
//! The benchmark server: no per-connection rate limit (load generators send
//! as fast as replies come back) and room for many connections from the one
//! address the load generator has. Every byte budget stays at its default.

use chanx::ServerConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = ServerConfig::new()
        .rate_limit(None)
        .max_connections(100_000)
        .max_connections_per_address(100_000);
    chanx_example_support::run_with_config("bench", chanx_example_bench::app(), config).await
}
