//! The benchmark harness: one load client drives, in the same run, the
//! chanx `bench` example and the hand-written `baseline-server`, and prints
//! every figure with the ratio chanx / baseline.
//!
//! Run everything with `scripts/bench` (release build), or a seconds-long
//! smoke run with `scripts/bench --smoke`. See BENCHMARKS.md.

// A command-line report: printing is what it is for.
#![allow(clippy::print_stdout)]

mod curves;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Socket = WebSocketStream<TcpStream>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// How much work each scenario does.
#[derive(Debug, Clone, Copy)]
struct Plan {
    echo_single: usize,
    echo_connections: usize,
    echo_per_connection: usize,
    fanout_clients: usize,
    fanout_messages: usize,
    idle_connections: usize,
    redis_messages: usize,
    rounds: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            echo_single: 20_000,
            echo_connections: 50,
            echo_per_connection: 2_000,
            fanout_clients: 100,
            fanout_messages: 2_000,
            idle_connections: 10_000,
            redis_messages: 1_000,
            rounds: 3,
        }
    }

    fn smoke() -> Self {
        Self {
            echo_single: 200,
            echo_connections: 5,
            echo_per_connection: 50,
            fanout_clients: 10,
            fanout_messages: 50,
            idle_connections: 200,
            redis_messages: 20,
            rounds: 1,
        }
    }
}

/// One server process under test.
struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    pid: u32,
}

impl ServerProcess {
    /// A server started elsewhere, found by the port it listens on.
    fn external(addr: SocketAddr) -> Result<Self, Error> {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ss -ltnpH 'sport = :{}' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2",
                addr.port()
            ))
            .output()?;
        let pid = String::from_utf8(output.stdout)?
            .trim()
            .parse()
            .map_err(|_| "no process listens on that port")?;
        Ok(Self {
            child: None,
            addr,
            pid,
        })
    }

    fn spawn(program: &Path, args: &[&str]) -> Result<Self, Error> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // With --pin, servers run on CPU 0 and this load client on CPU 1, as
        // on two machines: no scheduler placing both on one core.
        let mut command = if pinned() {
            let mut command = Command::new("taskset");
            command.args(["-c", "0"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let child = command
            .arg("--addr")
            .arg(addr.to_string())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot start {}: {error} (build it first: scripts/bench does)",
                    program.display()
                )
            })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !chanx_testing::is_listening(addr) {
            if Instant::now() > deadline {
                return Err(format!("{} did not listen on {addr}", program.display()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id();
        Ok(Self {
            child: Some(child),
            addr,
            pid,
        })
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU seconds (user + system) the process has used.
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return 0.0;
        };
        // Fields after the command name, which is in parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0.0;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|field| field.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
        (ticks(11) + ticks(12)) / clock_ticks()
    }

    /// Resident memory in KiB.
    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("VmRSS:"))
                    .and_then(|line| line.split_whitespace().nth(1))
                    .and_then(|kib| kib.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn connect(addr: SocketAddr, path: &str) -> Result<Socket, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (socket, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream).await?;
    Ok(socket)
}

async fn next_text(socket: &mut Socket) -> Result<String, Error> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Err(_) => return Err("no frame within 30 s".into()),
            Ok(None) => return Err("connection closed".into()),
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.as_str().to_owned()),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Waits until the connection is in the lobby: `join` is answered after the
/// connect hook and group joins.
async fn joined(socket: &mut Socket) -> Result<(), Error> {
    socket.send(Message::text(r#"{"action":"join"}"#)).await?;
    let reply = next_text(socket).await?;
    if reply.contains("joined") {
        Ok(())
    } else {
        Err(format!("unexpected {reply}").into())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_message: f64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)])
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// `connections` clients, each sending its next echo after the reply.
async fn echo(
    server: &ServerProcess,
    connections: usize,
    per_connection: usize,
) -> Result<Figures, Error> {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut socket = connect(server.addr, "/ws/bench").await?;
        joined(&mut socket).await?;
        sockets.push(socket);
    }
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, mut socket) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_connection);
            for seq in 0..per_connection {
                let frame = format!(r#"{{"action":"echo","payload":{{"text":"client {index} says hello","seq":{seq}}}}}"#);
                let sent = Instant::now();
                socket.send(Message::text(frame)).await?;
                let reply = next_text(&mut socket).await?;
                latencies.push(micros(sent.elapsed()));
                if !reply.contains("echo_result") || !reply.contains(&format!("\"seq\":{seq}")) {
                    return Err::<Vec<u32>, Error>(format!("bad echo reply {reply}").into());
                }
            }
            let _ = socket.close(None).await;
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(connections * per_connection);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu_before;
    latencies.sort_unstable();
    let messages = (connections * per_connection) as f64;
    Ok(Figures {
        rate: messages / elapsed,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        cpu_us_per_message: cpu * 1e6 / messages,
    })
}

/// `clients` receivers in the lobby across `servers`; one sender on the
/// first server broadcasts, and sends the next message only when every
/// receiver has the previous one. Checks every receiver got every message,
/// in order.
async fn fanout(
    servers: &[&ServerProcess],
    clients: usize,
    messages: usize,
) -> Result<Figures, Error> {
    let mut receivers = Vec::with_capacity(clients);
    for index in 0..clients {
        let server = servers[index % servers.len()];
        let mut socket = connect(server.addr, "/ws/bench").await?;
        joined(&mut socket).await?;
        receivers.push(socket);
    }
    // The publisher is in the lobby too: a reader drains its own copies.
    let mut publisher = connect(servers[0].addr, "/ws/bench").await?;
    joined(&mut publisher).await?;
    let (mut publisher_sink, mut publisher_source) = publisher.split();
    let publisher_reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < messages {
            match publisher_source.next().await {
                Some(Ok(Message::Text(_))) => seen += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    });
    // Every receiver reports each sequence number it gets.
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut tasks = Vec::new();
    for mut socket in receivers {
        let progress = progress_tx.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..messages {
                let frame = next_text(&mut socket).await?;
                if !frame.contains(&format!("\"seq\":{seq},")) {
                    return Err::<(), Error>(format!("expected seq {seq}, got {frame}").into());
                }
                let _ = progress.send(seq);
            }
            let _ = socket.close(None).await;
            Ok(())
        }));
    }
    drop(progress_tx);
    let cpu_before: f64 = servers.iter().map(|server| server.cpu_seconds()).sum();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(messages);
    for seq in 0..messages {
        let frame = format!(
            r#"{{"action":"broadcast","payload":{{"seq":{seq},"text":"fan-out payload of a realistic size, about eighty bytes"}}}}"#
        );
        let sent = Instant::now();
        publisher_sink.send(Message::text(frame)).await?;
        for _ in 0..clients {
            if progress_rx.recv().await.is_none() {
                return Err("a receiver stopped early".into());
            }
        }
        latencies.push(micros(sent.elapsed()));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = servers
        .iter()
        .map(|server| server.cpu_seconds())
        .sum::<f64>()
        - cpu_before;
    for task in tasks {
        task.await??;
    }
    let _ = publisher_reader.await;
    latencies.sort_unstable();
    let deliveries = (clients * messages) as f64;
    Ok(Figures {
        rate: deliveries / elapsed,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        cpu_us_per_message: cpu * 1e6 / deliveries,
    })
}

/// Server RSS growth per open, idle connection, in bytes.
async fn idle_memory(server: &ServerProcess, connections: usize) -> Result<f64, Error> {
    // Warm up allocator and runtime with a few connections first.
    let mut warm = Vec::new();
    for _ in 0..10 {
        let mut socket = connect(server.addr, "/ws/bench").await?;
        joined(&mut socket).await?;
        warm.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut socket = connect(server.addr, "/ws/bench").await?;
        joined(&mut socket).await?;
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib();
    drop(sockets);
    drop(warm);
    Ok((after.saturating_sub(before) as f64 * 1024.0) / connections as f64)
}

/// The median of each figure over `rounds` runs.
fn median(runs: &[Figures]) -> Figures {
    let pick = |value: fn(&Figures) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(value).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Figures {
        rate: pick(|figures| figures.rate),
        p50_us: pick(|figures| figures.p50_us),
        p99_us: pick(|figures| figures.p99_us),
        cpu_us_per_message: pick(|figures| figures.cpu_us_per_message),
    }
}

fn ratio(chanx: f64, baseline: f64) -> String {
    if baseline > 0.0 {
        format!("{:.2}", chanx / baseline)
    } else {
        "n/a".to_owned()
    }
}

fn binary(name: &str) -> Result<PathBuf, Error> {
    let dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or("no directory for the harness binary")?;
    Ok(dir.join(name))
}

struct RedisProcess(Child, u16);

impl RedisProcess {
    fn start() -> Result<Self, Error> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| format!("redis-server: {error}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !chanx_testing::is_listening(addr) {
            if Instant::now() > deadline {
                return Err("redis-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self(child, port))
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn row(name: &str, unit: &str, chanx: f64, baseline: Option<f64>) {
    let baseline_cells = match baseline {
        Some(baseline) => format!("{baseline:.1} | {}", ratio(chanx, baseline)),
        None => "— | —".to_owned(),
    };
    println!("| {name} | {unit} | {chanx:.1} | {baseline_cells} |");
}

/// A table row: chanx's figure (first of `values`), then each compared
/// server's figure and chanx / it.
fn columns(name: &str, unit: &str, values: &[f64]) {
    let Some((&chanx, others)) = values.split_first() else {
        return;
    };
    let mut line = format!("| {name} | {unit} | {chanx:.1} |");
    for &other in others {
        line.push_str(&format!(" {other:.1} | {} |", ratio(chanx, other)));
    }
    println!("{line}");
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Whether `--pin` was given.
fn pinned() -> bool {
    std::env::args().any(|arg| arg == "--pin")
}

/// Pins every thread of this process to CPU 1.
fn pin_self() -> Result<(), Error> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err("taskset failed: --pin needs util-linux's taskset and two CPUs".into())
    }
}

fn arg_string(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1).cloned())
}

fn arg_value(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1))
        .and_then(|value| value.parse().ok())
}

/// Opens `connections` connections, churns them (connect, talk, disconnect)
/// for `seconds`, closes everything, and reports the server's memory and
/// file descriptors at the start, at the peak and at the end.
async fn soak(connections: usize, seconds: u64) -> Result<(), Error> {
    let server = match arg_value("--port") {
        // An already running server (for example under a heap profiler).
        Some(port) => {
            ServerProcess::external(SocketAddr::from(([127, 0, 0, 1], u16::try_from(port)?)))?
        }
        None => ServerProcess::spawn(&binary("bench")?, &[])?,
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = (server.rss_kib(), open_fds(server.pid()));
    println!("soak: {connections} connections, churned for {seconds} s");
    println!("start: RSS {} KiB, {} open fds", start.0, start.1);
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut socket = connect(server.addr, "/ws/bench").await?;
        joined(&mut socket).await?;
        sockets.push(Some(socket));
    }
    let mut peak = (server.rss_kib(), open_fds(server.pid()));
    println!("all open: RSS {} KiB, {} open fds", peak.0, peak.1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut churned = 0_u64;
    let mut next = 0_usize;
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        // Replace a slice of the connections: close, reconnect, talk.
        let batch = 200.min(connections);
        let mut batch_tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let index = next % connections;
            next += 1;
            if let Some(mut old) = sockets[index].take() {
                batch_tasks.push(tokio::spawn(async move {
                    let _ = old.close(None).await;
                }));
            }
        }
        for task in batch_tasks {
            let _ = task.await;
        }
        for offset in 0..batch {
            let index = (next - batch + offset) % connections;
            let mut socket = connect(server.addr, "/ws/bench").await?;
            joined(&mut socket).await?;
            socket
                .send(Message::text(
                    r#"{"action":"echo","payload":{"text":"soak","seq":1}}"#,
                ))
                .await?;
            next_text(&mut socket).await?;
            sockets[index] = Some(socket);
            churned += 1;
        }
        let now = (server.rss_kib(), open_fds(server.pid()));
        peak = (peak.0.max(now.0), peak.1.max(now.1));
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "churned {churned} connections: RSS {} KiB, {} open fds",
                now.0, now.1
            );
            last_report = Instant::now();
        }
    }
    drop(sockets);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = (server.rss_kib(), open_fds(server.pid()));
    println!("peak: RSS {} KiB, {} open fds", peak.0, peak.1);
    println!("end (all closed): RSS {} KiB, {} open fds", end.0, end.1);
    println!(
        "churned {churned} connections; fds back to {} (start {}), RSS {:+} KiB from start ({:.0}% of the peak growth retained)",
        end.1,
        start.1,
        end.0 as i64 - start.0 as i64,
        if peak.0 > start.0 {
            (end.0.saturating_sub(start.0)) as f64 * 100.0 / (peak.0 - start.0) as f64
        } else {
            0.0
        }
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    if std::env::args().nth(1).as_deref() == Some("curves") {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        if pinned() {
            pin_self()?;
        }
        let out = arg_string("--out").unwrap_or_else(|| "docs/curves".to_owned());
        let smoke = std::env::args().any(|arg| arg == "--smoke");
        let replot = std::env::args().any(|arg| arg == "--replot");
        return curves::run(Path::new(&out), smoke, replot).await;
    }
    if std::env::args().nth(1).as_deref() == Some("soak") {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let connections = arg_value("--connections").unwrap_or(10_000);
        let seconds = arg_value("--seconds").unwrap_or(180);
        return soak(usize::try_from(connections)?, seconds).await;
    }
    if std::env::args().nth(1).as_deref() == Some("echo") {
        // An already running server: one echo run, printed.
        let port = arg_value("--port").ok_or("echo needs --port PORT")?;
        let connections = usize::try_from(arg_value("--connections").unwrap_or(1))?;
        let messages = usize::try_from(arg_value("--messages").unwrap_or(20_000))?;
        let server =
            ServerProcess::external(SocketAddr::from(([127, 0, 0, 1], u16::try_from(port)?)))?;
        let figures = echo(&server, connections, messages).await?;
        println!(
            "{connections} connections: {:.0} messages/s, p50 {:.0} µs, p99 {:.0} µs, {:.1} µs CPU/message",
            figures.rate, figures.p50_us, figures.p99_us, figures.cpu_us_per_message
        );
        return Ok(());
    }
    if std::env::args().nth(1).as_deref() == Some("fanout") {
        // An already running server: one fan-out run, printed.
        let port = arg_value("--port").ok_or("fanout needs --port PORT")?;
        let clients = usize::try_from(arg_value("--clients").unwrap_or(100))?;
        let messages = usize::try_from(arg_value("--messages").unwrap_or(2000))?;
        let server =
            ServerProcess::external(SocketAddr::from(([127, 0, 0, 1], u16::try_from(port)?)))?;
        let figures = fanout(&[&server], clients, messages).await?;
        println!(
            "{clients} clients: {:.0} deliveries/s, p50 {:.0} µs, p99 {:.0} µs, {:.2} µs CPU/delivery",
            figures.rate, figures.p50_us, figures.p99_us, figures.cpu_us_per_message
        );
        return Ok(());
    }
    if std::env::args().nth(1).as_deref() == Some("idle") {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let connections = usize::try_from(arg_value("--connections").unwrap_or(10_000))?;
        if let Some(port) = arg_value("--port") {
            // An already running server (for example under a profiler):
            // open the connections and hold them.
            let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port)?));
            let mut sockets = Vec::with_capacity(connections);
            for _ in 0..connections {
                let mut socket = connect(addr, "/ws/bench").await?;
                joined(&mut socket).await?;
                sockets.push(socket);
            }
            println!("holding {connections} connections for 20 s");
            tokio::time::sleep(Duration::from_secs(20)).await;
            return Ok(());
        }
        let chanx = ServerProcess::spawn(&binary("bench")?, &[])?;
        let per = idle_memory(&chanx, connections).await?;
        println!(
            "chanx: {:.2} KiB per idle connection ({connections} connections)",
            per / 1024.0
        );
        return Ok(());
    }
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let mut plan = if smoke { Plan::smoke() } else { Plan::full() };
    if let Some(rounds) = arg_value("--rounds") {
        plan.rounds = usize::try_from(rounds)?.max(1);
    }
    // Both the harness and the servers (which inherit it) hold thousands of
    // sockets during the idle-memory run.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if !smoke && limit < (plan.idle_connections as u64 + 100) {
        return Err(format!(
            "the open-file limit is {limit}; the idle run needs {}",
            plan.idle_connections + 100
        )
        .into());
    }

    let chanx_bin = binary("bench")?;
    let baseline_bin = binary("baseline-server")?;
    if pinned() {
        pin_self()?;
    }
    println!(
        "chanx-bench {}: plan {plan:?}{}",
        if smoke { "smoke run" } else { "full run" },
        if pinned() {
            ", servers pinned to CPU 0 and the load client to CPU 1"
        } else {
            ""
        }
    );

    let chanx = ServerProcess::spawn(&chanx_bin, &[])?;
    // The servers chanx is compared with, in this order: the tuned
    // hand-written floor, the same protocol by hand on axum (when built:
    // `scripts/bench` builds it), and another chanx build (`--before PATH`
    // or CHANX_BENCH_BEFORE, say the commit before a change).
    let mut others: Vec<(String, ServerProcess)> = vec![(
        "baseline".to_owned(),
        ServerProcess::spawn(&baseline_bin, &[])?,
    )];
    let axum_bin = arg_string("--axum")
        .map(PathBuf::from)
        .or_else(|| std::env::var("CHANX_BENCH_AXUM").ok().map(PathBuf::from))
        .or_else(|| binary("axum-baseline").ok().filter(|path| path.exists()));
    if let Some(path) = &axum_bin {
        others.push(("axum".to_owned(), ServerProcess::spawn(path, &[])?));
    }
    let before_bin = arg_string("--before").or_else(|| std::env::var("CHANX_BENCH_BEFORE").ok());
    if let Some(path) = &before_bin {
        others.push((
            "before".to_owned(),
            ServerProcess::spawn(Path::new(path), &[])?,
        ));
    }

    println!();
    println!("figures are medians of {} alternating rounds", plan.rounds);
    if let Some(path) = &axum_bin {
        println!("\"axum\" is {}", path.display());
    }
    if let Some(path) = &before_bin {
        println!("\"before\" is {path}");
    }
    println!();
    let mut header = "| scenario | figure | chanx |".to_owned();
    let mut rule = "|---|---|---:|".to_owned();
    for (label, _) in &others {
        header.push_str(&format!(" {label} | chanx / {label} |"));
        rule.push_str("---:|---:|");
    }
    println!("{header}");
    println!("{rule}");
    let figures: [fn(&Figures) -> f64; 4] = [
        |f| f.rate,
        |f| f.p50_us,
        |f| f.p99_us,
        |f| f.cpu_us_per_message,
    ];
    for (name, connections, per_connection) in [
        ("echo, 1 connection", 1, plan.echo_single),
        (
            "echo, 50 connections",
            plan.echo_connections,
            plan.echo_per_connection,
        ),
    ] {
        let name = if connections == 1 {
            name.to_owned()
        } else {
            format!("echo, {connections} connections")
        };
        // Rounds alternate the servers, so drift on the machine hits all.
        let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); others.len() + 1];
        for _ in 0..plan.rounds {
            runs[0].push(echo(&chanx, connections, per_connection).await?);
            for (index, (_, server)) in others.iter().enumerate() {
                runs[index + 1].push(echo(server, connections, per_connection).await?);
            }
        }
        let medians: Vec<Figures> = runs.iter().map(|runs| median(runs)).collect();
        for (value, unit) in figures.iter().zip([
            "messages/s",
            "p50 latency (µs)",
            "p99 latency (µs)",
            "server CPU (µs/message)",
        ]) {
            columns(&name, unit, &medians.iter().map(value).collect::<Vec<_>>());
        }
    }

    let name = format!("fan-out, {} clients", plan.fanout_clients);
    let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); others.len() + 1];
    for _ in 0..plan.rounds {
        runs[0].push(fanout(&[&chanx], plan.fanout_clients, plan.fanout_messages).await?);
        for (index, (_, server)) in others.iter().enumerate() {
            runs[index + 1]
                .push(fanout(&[server], plan.fanout_clients, plan.fanout_messages).await?);
        }
    }
    let medians: Vec<Figures> = runs.iter().map(|runs| median(runs)).collect();
    for (value, unit) in figures.iter().zip([
        "deliveries/s",
        "p50 broadcast→all (µs)",
        "p99 broadcast→all (µs)",
        "server CPU (µs/delivery)",
    ]) {
        columns(&name, unit, &medians.iter().map(value).collect::<Vec<_>>());
    }

    let name = format!("idle, {} connections", plan.idle_connections);
    let mut idle = vec![idle_memory(&chanx, plan.idle_connections).await? / 1024.0];
    for (_, server) in &others {
        idle.push(idle_memory(server, plan.idle_connections).await? / 1024.0);
    }
    columns(&name, "server RSS per connection (KiB)", &idle);
    drop(chanx);
    drop(others);

    match RedisProcess::start() {
        Ok(redis) => {
            let url = format!("redis://127.0.0.1:{}/", redis.1);
            let first =
                ServerProcess::spawn(&chanx_bin, &["--layer", "redis", "--redis-url", &url])?;
            let second =
                ServerProcess::spawn(&chanx_bin, &["--layer", "redis", "--redis-url", &url])?;
            let name = format!(
                "fan-out over Redis, {} clients on 2 processes",
                plan.fanout_clients
            );
            let c = fanout(&[&first, &second], plan.fanout_clients, plan.redis_messages).await?;
            row(&name, "deliveries/s", c.rate, None);
            row(&name, "p50 broadcast→all (µs)", c.p50_us, None);
            row(&name, "p99 broadcast→all (µs)", c.p99_us, None);
        }
        Err(error) => println!("| fan-out over Redis | skipped | {error} | | |"),
    }
    println!();
    println!("every receiver got every message, in order");
    Ok(())
}
