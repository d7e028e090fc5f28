//! What every example binary shares: command-line options, logging, the
//! channel layer, serving.

use std::net::SocketAddr;
use std::process::ExitCode;

use chanx::layer::{RedisLayer, RedisLayerConfig};
use chanx::{Layer, Router, Server, ServerConfig};

/// The address an example binds when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
/// The Redis URL used with `--layer redis` when `--redis-url` is not given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";

const USAGE: &str =
    "options: [--addr HOST:PORT] [--layer memory|redis] [--redis-url URL] [--emit-asyncapi PATH|-]";

/// Which channel layer to run with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerChoice {
    /// The in-memory layer: groups within this process.
    Memory,
    /// The Redis layer at this URL: groups across processes.
    Redis(String),
}

/// The command-line options every example takes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The channel layer.
    pub layer: LayerChoice,
    /// Write the AsyncAPI document here (`-` for standard output) and exit.
    pub emit_asyncapi: Option<String>,
}

/// Parses `--addr HOST:PORT`, `--layer memory|redis` and `--redis-url URL`
/// (each also as `--name=value`) from `args`, which exclude the program
/// name.
///
/// # Errors
///
/// A message for the user: an unknown argument, a missing value, or a value
/// that does not parse.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut addr = DEFAULT_ADDR.to_owned();
    let mut layer = "memory".to_owned();
    let mut redis_url: Option<String> = None;
    let mut emit_asyncapi: Option<String> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value ({what}); {USAGE}"))
        };
        match name.as_str() {
            "--addr" => addr = value("HOST:PORT")?,
            "--layer" => layer = value("memory or redis")?,
            "--redis-url" => redis_url = Some(value("redis://HOST:PORT/")?),
            "--emit-asyncapi" => {
                emit_asyncapi = Some(value("a file path, or - for standard output")?)
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {arg:?}; {USAGE}")),
        }
    }
    let addr = addr
        .parse()
        .map_err(|error| format!("--addr {addr:?} is not a socket address: {error}"))?;
    let layer = match layer.as_str() {
        "memory" if redis_url.is_none() => LayerChoice::Memory,
        "memory" => return Err("--redis-url needs --layer redis".to_owned()),
        "redis" => LayerChoice::Redis(redis_url.unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned())),
        other => return Err(format!("--layer {other:?}: expected memory or redis")),
    };
    Ok(Options {
        addr,
        layer,
        emit_asyncapi,
    })
}

/// Parses the command line, sets up logging (`RUST_LOG`, default `info`),
/// connects the chosen channel layer, and serves `app` until Ctrl-C or
/// SIGTERM.
pub async fn run(name: &str, app: Router) -> ExitCode {
    run_with_config(name, app, ServerConfig::default()).await
}

/// [`run`] with server settings other than the defaults.
pub async fn run_with_config(name: &str, app: Router, config: ServerConfig) -> ExitCode {
    let (addr, app) = match setup(name, app.with_config(config)).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let server = match Server::bind(addr).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{name}: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = server.local_addr().unwrap_or(addr);
    for (path, channel) in app.routes() {
        tracing::info!("{name}: ws://{addr}{path} ({})", channel.name);
    }
    if let Some(path) = app.playground_path() {
        tracing::info!(
            "{name}: playground: open http://{addr}{path} (docs: http://{addr}/asyncapi)"
        );
    }
    match server.serve(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Everything [`run`] does before serving, for a binary that serves the
/// router itself (inside an axum app, say): parses the command line, sets
/// up logging, writes the AsyncAPI document when asked, and connects the
/// chosen channel layer. Returns the address to listen on and the router
/// with its layer, or the exit code to end with (after `--emit-asyncapi`,
/// or a bad argument).
///
/// # Errors
///
/// The exit code, once the reason is printed.
pub async fn setup(name: &str, app: Router) -> Result<(SocketAddr, Router), ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{name}: {message}");
            return Err(ExitCode::from(2));
        }
    };
    if let Some(path) = &options.emit_asyncapi {
        return Err(emit_asyncapi(name, &app, path));
    }
    let app = match &options.layer {
        LayerChoice::Memory => app,
        LayerChoice::Redis(url) => {
            // The URL may carry a password: only its redacted form is shown.
            let config = RedisLayerConfig::new(url.as_str());
            let shown = config.redacted_url();
            match RedisLayer::connect_with(config).await {
                Ok(layer) => {
                    tracing::info!("{name}: channel layer: Redis at {shown}");
                    app.with_layer(Layer::new(layer))
                }
                Err(error) => {
                    eprintln!("{name}: cannot use Redis at {shown}: {error}");
                    return Err(ExitCode::FAILURE);
                }
            }
        }
    };
    if let Err(problems) = app.validate() {
        eprintln!("{name}: {problems}");
        return Err(ExitCode::FAILURE);
    }
    Ok((options.addr, app))
}

/// Writes `app`'s AsyncAPI document to `path` (`-`: standard output).
fn emit_asyncapi(name: &str, app: &Router, path: &str) -> ExitCode {
    let Some(document) = app.asyncapi_json() else {
        eprintln!("{name}: this app has no AsyncAPI settings (Router::with_asyncapi)");
        return ExitCode::FAILURE;
    };
    let written = if path == "-" {
        use std::io::Write;
        std::io::stdout().write_all(document.as_bytes())
    } else {
        std::fs::write(path, document)
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: cannot write {path}: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Options, String> {
        parse_args(list.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn defaults_and_overrides() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(defaults.layer, LayerChoice::Memory);
        assert_eq!(
            parse(&["--addr", "0.0.0.0:9"]).unwrap().addr,
            "0.0.0.0:9".parse().unwrap()
        );
        assert_eq!(
            parse(&["--addr=127.0.0.1:1"]).unwrap().addr,
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(
            parse(&["--layer", "redis"]).unwrap().layer,
            LayerChoice::Redis(DEFAULT_REDIS_URL.to_owned())
        );
        assert_eq!(
            parse(&["--layer=redis", "--redis-url", "redis://h:1/"])
                .unwrap()
                .layer,
            LayerChoice::Redis("redis://h:1/".to_owned())
        );
    }

    #[test]
    fn errors() {
        for bad in [
            &["--addr"][..],
            &["--addr", "nope"],
            &["--port", "1"],
            &["--layer", "kafka"],
            &["--redis-url", "redis://h/"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
