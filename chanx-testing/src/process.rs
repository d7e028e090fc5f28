//! Running a server binary as a child process, for tests across processes.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A server binary started with `--addr 127.0.0.1:<free port>` and the given
/// arguments; killed on drop.
///
/// The binary must accept `--addr HOST:PORT`, as every example does.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `program` and waits (up to 30 s) until it accepts connections.
    ///
    /// # Errors
    ///
    /// The program cannot be started, exits early, or never listens.
    pub fn spawn<I, S>(program: impl AsRef<OsStr>, args: I) -> std::io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new(program)
            .arg("--addr")
            .arg(addr.to_string())
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdin(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(Self { child, addr });
            }
            if let Some(status) = child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "server exited early with {status}"
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(std::io::Error::other(format!(
                    "server did not listen on {addr} within 30 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends Ctrl-C (SIGINT) and waits for the process to exit.
    ///
    /// # Errors
    ///
    /// The signal cannot be sent, or waiting fails.
    pub fn interrupt(&mut self) -> std::io::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other("kill -INT failed"));
        }
        self.child.wait()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
