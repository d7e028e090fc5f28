//! A presence diff fanned out to every member of one room: `members`
//! connections are tracked in the room (`#[channel(presence = "room")]`),
//! then a probe joins and leaves, `rounds` times; each time, how long until
//! every member has read the `presence_diff` of the join (and of the
//! leave). Real TCP, one process, chanx's defaults; `--redis URL` puts the
//! server on the Redis layer (the diff is then also published).
//!
//!   scripts/bench-presence [--members 1000] [--rounds 50] [--redis URL]
//!   scripts/bench-presence --smoke

// A command-line report: printing is what it is for.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chanx::layer::{RedisLayer, RedisLayerConfig};
use chanx::{Layer, Router, channel};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Default)]
struct Member;

#[channel(presence = "room")]
impl Member {}

struct Options {
    members: usize,
    rounds: usize,
    redis: Option<String>,
}

fn options() -> Result<Options, Error> {
    let mut options = Options {
        members: 1000,
        rounds: 50,
        redis: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => {
                options.members = 50;
                options.rounds = 5;
            }
            "--members" => options.members = args.next().ok_or("--members N")?.parse()?,
            "--rounds" => options.rounds = args.next().ok_or("--rounds N")?.parse()?,
            "--redis" => options.redis = Some(args.next().ok_or("--redis URL")?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(options)
}

/// What the members have read: how many `presence_diff` frames with a
/// join, and with a leave.
#[derive(Default)]
struct Tally {
    joins: AtomicUsize,
    leaves: AtomicUsize,
    changed: Notify,
}

async fn wait_until(tally: &Tally, counter: &AtomicUsize, target: usize) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let notified = tally.changed.notified();
        if counter.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the members did not all read the diff within 60 s".into());
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    url: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, Error> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(tokio_tungstenite::client_async(url, stream).await?.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = options()?;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let layer = match &options.redis {
        Some(url) => {
            Layer::new(RedisLayer::connect_with(RedisLayerConfig::new(url.clone())).await?)
        }
        None => Layer::memory(),
    };
    let config = chanx::ServerConfig::new()
        .max_connections(options.members * 2 + 100)
        .max_connections_per_address(options.members * 2 + 100);
    let router = Router::new()
        .with_layer(layer)
        .with_config(config)
        .route::<Member>("/ws");
    let server = chanx_testing::TestServer::start(router).await?;
    let url = format!("ws://{}/ws", server.addr());
    let tally = Arc::new(Tally::default());

    // The members join one by one; each reads every frame it is sent.
    let setup = Instant::now();
    for _ in 0..options.members {
        let socket = connect(server.addr(), &url).await?;
        let (_sink, mut stream) = socket.split();
        // Its presence_state and its own join.
        for _ in 0..2 {
            stream.next().await.ok_or("closed while joining")??;
        }
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            let _sink = _sink;
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                if !text.starts_with(r#"{"action":"presence_diff""#) {
                    continue;
                }
                if !text.contains(r#""joins":{}"#) {
                    tally.joins.fetch_add(1, Ordering::AcqRel);
                }
                if !text.contains(r#""leaves":{}"#) {
                    tally.leaves.fetch_add(1, Ordering::AcqRel);
                }
                tally.changed.notify_waiters();
            }
        });
    }
    let setup = setup.elapsed();
    // Everyone has read the joins that followed their own.
    let joins_in_setup = options.members * (options.members - 1) / 2;
    wait_until(&tally, &tally.joins, joins_in_setup).await?;

    let mut join_times = Vec::new();
    let mut leave_times = Vec::new();
    let mut state_bytes = 0;
    for round in 0..options.rounds {
        let joins_before = tally.joins.load(Ordering::Acquire);
        let leaves_before = tally.leaves.load(Ordering::Acquire);
        let started = Instant::now();
        let probe = connect(server.addr(), &url).await?;
        let (sink, mut stream) = probe.split();
        wait_until(&tally, &tally.joins, joins_before + options.members).await?;
        join_times.push(started.elapsed());
        if round == 0
            && let Some(Ok(Message::Text(state))) = stream.next().await
        {
            state_bytes = state.len();
        }
        let mut probe = sink.reunite(stream).map_err(|_| "reunite")?;
        let started = Instant::now();
        probe.close(None).await?;
        wait_until(&tally, &tally.leaves, leaves_before + options.members).await?;
        leave_times.push(started.elapsed());
    }
    join_times.sort();
    leave_times.sort();
    let layer = if options.redis.is_some() {
        "redis"
    } else {
        "memory"
    };
    println!(
        "presence fan-out, {} members of one room, {} layer, {} rounds",
        options.members, layer, options.rounds
    );
    println!(
        "  setup: {} members joined in {:.2?} ({} diffs read)",
        options.members, setup, joins_in_setup
    );
    println!(
        "  presence_state sent to the {}th member: {state_bytes} bytes",
        options.members + 1
    );
    for (what, times) in [("join", &join_times), ("leave", &leave_times)] {
        let median = percentile(times, 0.5);
        println!(
            "  {what}: every member read the diff in median {:.2?}, p99 {:.2?} ({:.0} deliveries/s at the median)",
            median,
            percentile(times, 0.99),
            options.members as f64 / median.as_secs_f64()
        );
    }
    server.stop().await?;
    Ok(())
}
