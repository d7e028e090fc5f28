//! Chanx 2.10+'s envelope keys on the flat frame (`version`, `topic`,
//! `ref`, `seq`): checked before the action, as Chanx does. (Work towards
//! topics, issue 14.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::messages::{Ping, Pong};
use chanx_core::{Router, Settings, channel};
use chanx_testing::Communicator;
use serde_json::json;

#[derive(Default)]
struct Plain;

#[channel]
impl Plain {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[tokio::test]
async fn a_bad_envelope_key_is_a_validation_error_without_completion() {
    let app = Router::new()
        .route::<Plain>("/ws")
        .with_settings(Settings::new().send_completion(true));
    let mut client = Communicator::connect(&app, "/ws").await.unwrap();
    client
        .send_text(r#"{"action":"ping","version":"x"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"error","payload":[{"type":"int_parsing","loc":["version"],"msg":"Input should be a valid integer, unable to parse string as an integer"}]})
    );
    // Not followed by `complete`: the frame never reached a handler.
    client.send_message(&Ping).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"pong","payload":null})
    );
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"complete","payload":null})
    );
}

#[tokio::test]
async fn replies_to_enveloped_frames_carry_the_version_back() {
    let app = Router::new().route::<Plain>("/ws");
    let mut client = Communicator::connect(&app, "/ws").await.unwrap();
    // Chanx 2.13 answers `{"ref":"6","action":"ping"}` so.
    client
        .send_text(r#"{"ref":"6","action":"ping"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null,"version":1,"ref":"6"}"#
    );
    client
        .send_text(r#"{"version":1,"action":"ping"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null,"version":1}"#
    );
    // A frame without envelope keys gets a plain reply.
    client.send_text(r#"{"action":"ping"}"#).await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null}"#
    );
}
