//! The `chanx` binary on the examples' documents: TypeScript generation
//! and its staleness check, `asyncapi validate` and `asyncapi diff`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn chanx(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chanx"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .join("asyncapi.json")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_changed_field_changes_the_typescript_and_the_check_fails_until_refreshed() {
    let dir = scratch("ts-staleness");
    let original = example("chat");
    let out = dir.join("client");
    let (code, output) = chanx(&[
        "typescript",
        original.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{output}");
    let (code, output) = chanx(&[
        "typescript",
        original.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!((code, output.as_str()), (0, ""));

    // A new required field on the message a member sends.
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&original).unwrap()).unwrap();
    let payload = &mut document["components"]["schemas"]["NewChatMessagePayload"];
    payload["properties"]["mood"] = json!({"type": "string", "description": "How it feels."});
    payload["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("mood"));
    let changed = dir.join("changed.json");
    std::fs::write(&changed, serde_json::to_string_pretty(&document).unwrap()).unwrap();

    let (code, output) = chanx(&[
        "typescript",
        changed.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!((code, output.trim()), (1, "schemas.ts differs"));
    let files = chanx_cli::typescript::generate(&document).unwrap();
    assert!(files["schemas.ts"].contains("  /** How it feels. */\n  mood: string;\n"));

    let (code, output) = chanx(&[
        "asyncapi",
        "diff",
        original.to_str().unwrap(),
        changed.to_str().unwrap(),
        "--fail-on-breaking",
    ]);
    assert_eq!(code, 1, "{output}");
    assert_eq!(
        output.trim(),
        "+ schema NewChatMessagePayload.mood (required) !"
    );

    let (code, _) = chanx(&[
        "typescript",
        changed.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, output) = chanx(&[
        "typescript",
        changed.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!((code, output.as_str()), (0, ""));
}

#[test]
fn every_example_document_validates_and_generates_deterministically() {
    for name in [
        "assistant",
        "axum",
        "bench",
        "chat",
        "notifications",
        "system",
    ] {
        let path = example(name);
        let (code, output) = chanx(&["asyncapi", "validate", path.to_str().unwrap()]);
        assert_eq!((code, output.trim()), (0, "ok"), "{name}");
        let document = chanx_cli::read_document(&path).unwrap();
        assert_eq!(
            chanx_cli::typescript::generate(&document).unwrap(),
            chanx_cli::typescript::generate(&document).unwrap()
        );
    }
    let broken = scratch("broken").join("broken.json");
    std::fs::write(
        &broken,
        r#"{"asyncapi":"2.6.0","info":{"title":"x"},"channels":{}}"#,
    )
    .unwrap();
    let (code, output) = chanx(&["asyncapi", "validate", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        output.trim(),
        "asyncapi is \"2.6.0\"; 3.x is expected\nno info.version"
    );
    let (code, output) = chanx(&["typescript", "/nonexistent.json", "--out", "/tmp/x"]);
    assert_eq!(code, 1);
    assert!(output.starts_with("chanx: /nonexistent.json: "), "{output}");
}
