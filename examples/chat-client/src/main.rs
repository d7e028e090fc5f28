//! A terminal chat client for the `chat` example: lines you type go to the
//! room; what the room says is printed. Typed end to end: the example's own
//! message types, through `chanx-client`.
//!
//! ```sh
//! cargo run -p chanx-example-chat -- --addr 127.0.0.1:8000 &
//! cargo run -p chanx-example-chat-client -- --room lobby --token alice-token
//! ```
//!
//! A dropped connection is reopened with backoff; the gap is printed, not
//! hidden.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chanx::Message;
use chanx::presence::{PresenceDiff, PresenceState};
use chanx_client::{Client, ClientError, Incoming, Reconnect};
use chanx_example_chat::{ChatMessage, JoinedRoom, NewChatMessage};
use clap::{Arg, ArgAction, Command};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the chat channel pushes to a member.
#[derive(Debug, Clone, PartialEq, Message)]
enum RoomEvent {
    Chat(ChatMessage),
    Joined(JoinedRoom),
    Present(PresenceState),
    Changed(PresenceDiff),
}

fn cli() -> Command {
    Command::new("chat-client")
        .about("A terminal client for the chanx chat example")
        .arg(
            Arg::new("url")
                .long("url")
                .default_value("ws://127.0.0.1:8000")
                .help("The server, without the path"),
        )
        .arg(
            Arg::new("room")
                .long("room")
                .default_value("lobby")
                .help("The room to join"),
        )
        .arg(
            Arg::new("token")
                .long("token")
                .required(true)
                .help("Your token (the demo users: alice-token, bob-token, carol-token)"),
        )
        .arg(
            Arg::new("no-reconnect")
                .long("no-reconnect")
                .action(ArgAction::SetTrue)
                .help("Exit when the connection drops instead of reopening it"),
        )
}

/// Prints a line (a closed stdout is not worth a panic).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli().get_matches();
    let base = args
        .get_one::<String>("url")
        .map_or("ws://127.0.0.1:8000", String::as_str);
    let room = args
        .get_one::<String>("room")
        .map_or("lobby", String::as_str);
    let token = args.get_one::<String>("token").map_or("", String::as_str);
    let url = format!("{}/ws/chat/{room}", base.trim_end_matches('/'));

    let mut builder = Client::builder(&url).bearer_token(token);
    if !args.get_flag("no-reconnect") {
        builder = builder.reconnect(Reconnect::new().max(Duration::from_secs(5)));
    }
    let client = match builder.connect().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("chat-client: {error}");
            return ExitCode::FAILURE;
        }
    };
    match client.authenticated().await {
        Ok(_) => {}
        Err(ClientError::Unauthenticated(frame)) => {
            eprintln!(
                "chat-client: refused: {} {}",
                frame.status_code, frame.status_text
            );
            eprintln!("chat-client: {}", client.closed().await);
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("chat-client: {error}");
            return ExitCode::FAILURE;
        }
    }
    let mut events = match client.messages::<RoomEvent>() {
        Ok(events) => events,
        Err(error) => {
            eprintln!("chat-client: {error}");
            return ExitCode::FAILURE;
        }
    };

    // Lines from the terminal go to the room.
    let sender = client.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let message = NewChatMessage {
                message: line.to_owned(),
            };
            if let Err(error) = sender.send(&message).await {
                eprintln!("chat-client: not sent ({error})");
            }
        }
        // End of input: leave.
        sender.close().await;
    });

    while let Some(event) = events.next().await {
        match event {
            Ok(Incoming::Message(RoomEvent::Joined(joined))) => {
                say(&format!("* joined {}", joined.room))
            }
            Ok(Incoming::Message(RoomEvent::Present(present))) => {
                let users: Vec<&str> = present.0.keys().map(String::as_str).collect();
                say(&format!("* here: {}", users.join(", ")));
            }
            Ok(Incoming::Message(RoomEvent::Changed(diff))) => {
                for user in diff.joins.keys() {
                    say(&format!("* {user} is here"));
                }
                for user in diff.leaves.keys() {
                    say(&format!("* {user} left"));
                }
            }
            Ok(Incoming::Message(RoomEvent::Chat(chat))) => {
                say(&format!(
                    "[{}] {}: {}",
                    chat.room, chat.sender, chat.message
                ));
            }
            Ok(Incoming::Reconnected { gap, attempts }) => say(&format!(
                "* reconnected after {:.1} s ({attempts} attempts); messages sent meanwhile were missed",
                gap.as_secs_f64()
            )),
            Err(error) => say(&format!("* {error}")),
        }
    }
    let closed = client.closed().await;
    say(&format!("* {closed}"));
    ExitCode::SUCCESS
}
