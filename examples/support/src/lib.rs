//! What every example binary shares: `--addr` parsing, logging, serving.

use std::net::SocketAddr;
use std::process::ExitCode;

use chanx_core::{Router, Server};

/// The address an example binds when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";

/// Parses `--addr HOST:PORT` (or `--addr=HOST:PORT`) from `args`, which
/// exclude the program name.
///
/// # Errors
///
/// A message for the user: an unknown argument, a missing value, or an
/// address that does not parse.
pub fn parse_addr(args: impl IntoIterator<Item = String>) -> Result<SocketAddr, String> {
    let mut addr = DEFAULT_ADDR.to_owned();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = args
                .next()
                .ok_or("--addr needs a value, as in --addr 127.0.0.1:8000")?;
        } else if let Some(value) = arg.strip_prefix("--addr=") {
            value.clone_into(&mut addr);
        } else if arg == "--help" || arg == "-h" {
            return Err(format!(
                "usage: [--addr HOST:PORT]   (default {DEFAULT_ADDR})"
            ));
        } else {
            return Err(format!(
                "unknown argument {arg:?}; expected --addr HOST:PORT"
            ));
        }
    }
    addr.parse()
        .map_err(|error| format!("--addr {addr:?} is not a socket address: {error}"))
}

/// Parses the command line, sets up logging (`RUST_LOG`, default `info`),
/// and serves `app` until Ctrl-C.
pub async fn run(name: &str, app: Router) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let addr = match parse_addr(std::env::args().skip(1)) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("{name}: {message}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(addr).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{name}: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    for (path, channel) in app.routes() {
        tracing::info!("{name}: ws://{addr}{path} ({})", channel.name);
    }
    match server.serve(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn addr_defaults_and_overrides() {
        assert_eq!(
            parse_addr(args(&[])).unwrap(),
            DEFAULT_ADDR.parse().unwrap()
        );
        assert_eq!(
            parse_addr(args(&["--addr", "0.0.0.0:9"])).unwrap(),
            "0.0.0.0:9".parse().unwrap()
        );
        assert_eq!(
            parse_addr(args(&["--addr=127.0.0.1:1"])).unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert!(parse_addr(args(&["--addr"])).is_err());
        assert!(parse_addr(args(&["--addr", "nope"])).is_err());
        assert!(parse_addr(args(&["--port", "1"])).is_err());
    }
}
