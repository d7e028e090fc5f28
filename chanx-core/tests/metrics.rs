//! Metrics over real TCP, through the Prometheus exporter at `GET /metrics`:
//! connections, frames and bytes both ways, handler durations, rejected
//! frames by kind, and close codes move as a client talks. One test: a
//! process has one recorder.

#![cfg(feature = "prometheus")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::messages::{Ping, Pong};
use chanx_core::{Router, channel};
use chanx_testing::{TestServer, http_get};

#[derive(Default)]
struct Metered;

#[channel(name = "metered")]
impl Metered {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

/// The value of the sample line `series` (name and labels, exactly).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(server: &TestServer) -> String {
    let (status, body) = http_get(server.addr(), "/metrics").await.unwrap();
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn the_counters_move_as_a_client_talks() {
    let app = Router::new()
        .route::<Metered>("/ws")
        .with_prometheus()
        .unwrap();
    // A second router in the same process shares the recorder.
    assert!(Router::new().with_prometheus().is_ok());
    let server = TestServer::start(app).await.unwrap();
    let before = scrape(&server).await;
    assert_eq!(sample(&before, "chanx_connections_active"), None);

    let mut client = server.connect("/ws").await.unwrap();
    client.send_text(r#"{"action":"ping"}"#).await.unwrap();
    client.receive_json().await.unwrap();
    client.send_text(r#"{"action":"ping"}"#).await.unwrap();
    client.receive_json().await.unwrap();
    client.send_text("not json").await.unwrap();
    client.receive_json().await.unwrap();
    client.send_text(r#"{"action":"nope"}"#).await.unwrap();
    client.receive_json().await.unwrap();

    let during = scrape(&server).await;
    assert_eq!(
        sample(&during, "chanx_connections_active"),
        Some(1.0),
        "{during}"
    );
    assert_eq!(sample(&during, "chanx_connections_total"), Some(1.0));
    assert_eq!(
        sample(&during, r#"chanx_frames_received_total{channel="metered"}"#),
        Some(4.0)
    );
    assert_eq!(
        sample(&during, r#"chanx_frames_sent_total{channel="metered"}"#),
        Some(4.0)
    );
    let received =
        r#"{"action":"ping"}"#.len() * 2 + "not json".len() + r#"{"action":"nope"}"#.len();
    assert_eq!(
        sample(&during, "chanx_bytes_received_total"),
        Some(received as f64)
    );
    assert!(sample(&during, "chanx_bytes_sent_total").unwrap() > 60.0);
    assert_eq!(
        sample(
            &during,
            r#"chanx_rejected_frames_total{kind="json_invalid"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &during,
            r#"chanx_rejected_frames_total{kind="union_tag_invalid"}"#
        ),
        Some(1.0)
    );
    // The two pings: the unknown action has no handler to time.
    assert_eq!(
        sample(
            &during,
            r#"chanx_handler_duration_seconds_count{channel="metered",action="ping"}"#
        ),
        Some(2.0),
        "{during}"
    );
    assert!(during.contains(
        r#"chanx_handler_duration_seconds_bucket{channel="metered",action="ping",le="0.001"}"#
    ));

    client.disconnect().await.unwrap();
    // A code a client chooses in the application range is one series.
    for code in [4123, 3999] {
        let other = server.connect("/ws").await.unwrap();
        other.disconnect_with(code).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let after = scrape(&server).await;
        if sample(&after, "chanx_connections_active") == Some(0.0) {
            assert_eq!(
                sample(&after, r#"chanx_connections_closed_total{code="1000"}"#),
                Some(1.0),
                "{after}"
            );
            assert_eq!(
                sample(
                    &after,
                    r#"chanx_connections_closed_total{code="application"}"#
                ),
                Some(2.0),
                "{after}"
            );
            assert!(!after.contains(r#"code="4123""#), "{after}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{after}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
