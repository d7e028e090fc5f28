//! Scale curves: how memory, fan-out and echo grow with load, for chanx
//! and both baselines, and cross-process fan-out on Redis; written as CSV
//! and drawn as SVG charts with plotters.
//!
//! `scripts/bench-curves` (release build) writes `docs/curves/*.svg` and
//! `docs/curves/curves.csv`; `--smoke` runs a few small points, `--replot`
//! draws the charts again from the CSV.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{Error, ServerProcess, binary, echo, fanout, idle_memory};

/// One measured point of one server.
struct Point {
    curve: &'static str,
    server: String,
    x: f64,
    y: f64,
}

/// The servers of a curve: chanx and the baselines that exist.
fn servers() -> Result<Vec<(String, PathBuf)>, Error> {
    let mut out = vec![
        ("chanx".to_owned(), binary("bench")?),
        ("baseline".to_owned(), binary("baseline-server")?),
    ];
    let axum = binary("axum-baseline")?;
    if axum.exists() {
        out.push(("axum".to_owned(), axum));
    }
    Ok(out)
}

pub(super) async fn run(out: &Path, smoke: bool, replot: bool) -> Result<(), Error> {
    std::fs::create_dir_all(out)?;
    let points = if replot {
        read_csv(&out.join("curves.csv"))?
    } else {
        measure(smoke).await?
    };
    let mut csv = String::from("curve,server,x,y\n");
    for point in &points {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            point.curve, point.server, point.x, point.y
        );
    }
    std::fs::write(out.join("curves.csv"), csv)?;
    plot(out, &points)
}

/// The points of an earlier run (`--replot`).
fn read_csv(path: &Path) -> Result<Vec<Point>, Error> {
    let text = std::fs::read_to_string(path)?;
    let mut points = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [curve, server, x, y] = fields.as_slice() else {
            return Err(format!("bad line in {}: {line}", path.display()).into());
        };
        let curve = CURVES
            .iter()
            .find(|known| *known == curve)
            .ok_or_else(|| format!("unknown curve {curve}"))?;
        points.push(Point {
            curve,
            server: (*server).to_owned(),
            x: x.parse()?,
            y: y.parse()?,
        });
    }
    Ok(points)
}

const CURVES: [&str; 7] = [
    "memory",
    "fanout_rate",
    "fanout_p99",
    "echo_rate",
    "echo_p99",
    "redis_rate",
    "redis_p99",
];

async fn measure(smoke: bool) -> Result<Vec<Point>, Error> {
    let servers = servers()?;
    let mut points = Vec::new();

    // Memory vs open connections, a fresh server per point. This machine's
    // hard open-file limit is 20,000 per process: 18,000 is the top point
    // here (see BENCHMARKS.md).
    let sizes: &[usize] = if smoke {
        &[100, 300]
    } else {
        &[1_000, 2_000, 5_000, 10_000, 18_000]
    };
    for &connections in sizes {
        for (name, path) in &servers {
            let server = ServerProcess::spawn(path, &[])?;
            let per = idle_memory(&server, connections).await? / 1024.0;
            println!("memory  {name:<8} {connections:>6} connections: {per:.2} KiB each");
            points.push(Point {
                curve: "memory",
                server: name.clone(),
                x: connections as f64,
                y: per,
            });
        }
    }

    // Fan-out vs receivers in one group: about 200,000 deliveries a point.
    let receivers: &[usize] = if smoke {
        &[10, 50]
    } else {
        &[10, 100, 1_000, 10_000]
    };
    for &clients in receivers {
        let messages = (200_000 / clients).clamp(10, 2_000);
        for (name, path) in &servers {
            let server = ServerProcess::spawn(path, &[])?;
            let figures = fanout(&[&server], clients, messages).await?;
            println!(
                "fan-out {name:<8} {clients:>6} receivers: {:.0} deliveries/s, p99 {:.0} µs",
                figures.rate, figures.p99_us
            );
            points.push(Point {
                curve: "fanout_rate",
                server: name.clone(),
                x: clients as f64,
                y: figures.rate,
            });
            points.push(Point {
                curve: "fanout_p99",
                server: name.clone(),
                x: clients as f64,
                y: figures.p99_us,
            });
        }
    }

    // Echo vs connections: about 40,000 messages a point.
    let connections: &[usize] = if smoke {
        &[1, 10]
    } else {
        &[1, 10, 100, 1_000]
    };
    for &count in connections {
        let per_connection = (40_000 / count).clamp(20, 20_000);
        for (name, path) in &servers {
            let server = ServerProcess::spawn(path, &[])?;
            let figures = echo(&server, count, per_connection).await?;
            println!(
                "echo    {name:<8} {count:>6} connections: {:.0} messages/s, p99 {:.0} µs",
                figures.rate, figures.p99_us
            );
            points.push(Point {
                curve: "echo_rate",
                server: name.clone(),
                x: count as f64,
                y: figures.rate,
            });
            points.push(Point {
                curve: "echo_p99",
                server: name.clone(),
                x: count as f64,
                y: figures.p99_us,
            });
        }
    }

    // Cross-process fan-out on Redis: 1 (in-process layer), 2 and 4 server
    // processes sharing one group; chanx only (the baselines have no layer).
    match super::RedisProcess::start() {
        Ok(redis) => {
            let url = format!("redis://127.0.0.1:{}/", redis.1);
            let chanx = binary("bench")?;
            let clients = if smoke { 20 } else { 100 };
            let messages = if smoke { 20 } else { 1_000 };
            for processes in [1_usize, 2, 4] {
                let mut spawned = Vec::new();
                for _ in 0..processes {
                    spawned.push(if processes == 1 {
                        ServerProcess::spawn(&chanx, &[])?
                    } else {
                        ServerProcess::spawn(&chanx, &["--layer", "redis", "--redis-url", &url])?
                    });
                }
                let refs: Vec<&ServerProcess> = spawned.iter().collect();
                let figures = fanout(&refs, clients, messages).await?;
                let label = if processes == 1 {
                    "1 process (memory)".to_owned()
                } else {
                    format!("{processes} processes (Redis)")
                };
                println!(
                    "redis   {label}: {:.0} deliveries/s, p99 {:.0} µs",
                    figures.rate, figures.p99_us
                );
                points.push(Point {
                    curve: "redis_rate",
                    server: "chanx".to_owned(),
                    x: processes as f64,
                    y: figures.rate,
                });
                points.push(Point {
                    curve: "redis_p99",
                    server: "chanx".to_owned(),
                    x: processes as f64,
                    y: figures.p99_us,
                });
            }
        }
        Err(error) => println!("redis curve skipped: {error}"),
    }

    Ok(points)
}

fn plot(out: &Path, points: &[Point]) -> Result<(), Error> {
    for (curve, title, x_label, y_label, scale) in [
        (
            "memory",
            "Server memory per idle connection",
            "open connections",
            "KiB per connection",
            Scale::LogX,
        ),
        (
            "fanout_rate",
            "Fan-out throughput, one group",
            "receivers",
            "deliveries/s",
            Scale::LogX,
        ),
        (
            "fanout_p99",
            "Fan-out latency, one group",
            "receivers",
            "p99 broadcast→all (µs)",
            Scale::LogBoth,
        ),
        (
            "echo_rate",
            "Echo throughput",
            "connections",
            "messages/s",
            Scale::LogX,
        ),
        (
            "echo_p99",
            "Echo latency",
            "connections",
            "p99 (µs)",
            Scale::LogBoth,
        ),
        (
            "redis_rate",
            "chanx fan-out across processes (100 receivers)",
            "server processes",
            "deliveries/s",
            Scale::Linear,
        ),
    ] {
        let path = out.join(format!("{curve}.svg"));
        chart(&path, title, (x_label, y_label), scale, points, curve)?;
    }
    println!("wrote {} charts and curves.csv to {}", 6, out.display());
    Ok(())
}

/// The axes of a chart.
#[derive(Clone, Copy)]
enum Scale {
    Linear,
    LogX,
    LogBoth,
}

/// One chart: a line per server.
fn chart(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    scale: Scale,
    points: &[Point],
    curve: &str,
) -> Result<(), Error> {
    let mine: Vec<&Point> = points.iter().filter(|point| point.curve == curve).collect();
    if mine.is_empty() {
        return Ok(());
    }
    let (x_min, x_max) = mine
        .iter()
        .fold((f64::MAX, f64::MIN), |(low, high), point| {
            (low.min(point.x), high.max(point.x))
        });
    let y_max = mine.iter().fold(0.0_f64, |high, point| high.max(point.y)) * 1.15;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let mut servers: Vec<&str> = mine.iter().map(|point| point.server.as_str()).collect();
    servers.dedup();
    servers.sort_unstable();
    servers.dedup();
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let x_format = |x: &f64| format!("{x:.0}");
    let y_format = |y: &f64| format!("{y:.0}");
    macro_rules! draw {
        ($x:expr, $y:expr) => {{
            let mut chart = builder
                .build_cartesian_2d($x, $y)
                .map_err(|error| error.to_string())?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&x_format)
                .y_label_formatter(&y_format)
                .draw()
                .map_err(|error| error.to_string())?;
            lines(&mut chart, &mine, &servers)?;
        }};
    }
    let y_min = mine
        .iter()
        .fold(f64::MAX, |low, point| low.min(point.y))
        .max(1.0)
        / 1.5;
    match scale {
        Scale::Linear => draw!((x_min - 0.2)..(x_max + 0.2), 0.0..y_max),
        Scale::LogX => draw!((x_min..x_max).log_scale(), 0.0..y_max),
        Scale::LogBoth => draw!((x_min..x_max).log_scale(), (y_min..y_max).log_scale()),
    }
    root.present().map_err(|error| error.to_string())?;
    Ok(())
}

/// A line (and its points) per server, and the legend.
fn lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    mine: &[&Point],
    servers: &[&str],
) -> Result<(), Error>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let colors = [
        RGBColor(0xd1, 0x49, 0x1f),
        RGBColor(0x1f, 0x6f, 0xd1),
        RGBColor(0x2a, 0x9d, 0x4b),
    ];
    for (index, server) in servers.iter().enumerate() {
        let color = colors[index % colors.len()];
        let mut line: Vec<(f64, f64)> = mine
            .iter()
            .filter(|point| point.server == *server)
            .map(|point| (point.x, point.y))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(*server)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                line.iter()
                    .map(|&point| Circle::new(point, 3, color.filled())),
            )
            .map_err(|error| error.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|error| error.to_string())?;
    Ok(())
}
