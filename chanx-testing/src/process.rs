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
    log: Option<std::path::PathBuf>,
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
        let log_level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
        Self::start(program, args, &log_level, None)
    }

    /// Starts `program` as [`ServerProcess::spawn`] does, logging at
    /// `log_level` (a `RUST_LOG` filter) into a file whose text
    /// [`ServerProcess::logs`] returns: for tests of what reaches the logs.
    ///
    /// # Errors
    ///
    /// As [`ServerProcess::spawn`], or the log file cannot be created.
    pub fn spawn_logged<I, S>(
        program: impl AsRef<OsStr>,
        args: I,
        log_level: &str,
    ) -> std::io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "chanx-server-{}-{}.log",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        Self::start(program, args, log_level, Some(path))
    }

    fn start<I, S>(
        program: impl AsRef<OsStr>,
        args: I,
        log_level: &str,
        log: Option<std::path::PathBuf>,
    ) -> std::io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(program);
        command
            .arg("--addr")
            .arg(addr.to_string())
            .args(args)
            .env("RUST_LOG", log_level)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        if let Some(path) = &log {
            let file = std::fs::File::create(path)?;
            command.stdout(file.try_clone()?).stderr(file);
        }
        let mut child = command.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if is_listening(addr) {
                return Ok(Self { child, addr, log });
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

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory in KiB, from `/proc/<pid>/status`.
    #[must_use]
    pub fn rss_kib(&self) -> Option<u64> {
        crate::raw::rss_kib(self.pid())
    }

    /// What it has logged so far (only for [`ServerProcess::spawn_logged`]).
    #[must_use]
    pub fn logs(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Sends Ctrl-C (SIGINT) and waits for the process to exit.
    ///
    /// # Errors
    ///
    /// The signal cannot be sent, or waiting fails.
    pub fn interrupt(&mut self) -> std::io::Result<ExitStatus> {
        self.signal("-INT")?;
        self.child.wait()
    }

    /// Sends SIGTERM (what container runtimes send) and waits for the
    /// process to exit.
    ///
    /// # Errors
    ///
    /// The signal cannot be sent, or waiting fails.
    pub fn terminate(&mut self) -> std::io::Result<ExitStatus> {
        self.signal("-TERM")?;
        self.child.wait()
    }

    /// Waits up to `timeout` for the process to exit.
    ///
    /// # Errors
    ///
    /// Waiting fails, or the process is still running after `timeout`
    /// ([`std::io::ErrorKind::TimedOut`]).
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal without waiting.
    ///
    /// # Errors
    ///
    /// The signal cannot be sent.
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill {signal} failed")))
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(path) = &self.log {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether a server accepts connections on `addr`, a loopback address.
///
/// A connection to a free port of the ephemeral range can connect to
/// itself (the kernel may pick that very port as its source, and the
/// handshake meets itself): such a connection does not count.
#[must_use]
pub fn is_listening(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
        Ok(stream) => stream.local_addr().is_ok_and(|local| local != addr),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_counts_and_a_closed_port_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(is_listening(addr));
        drop(listener);
        // Nothing listens now: refused, or (rarely) a connection to itself,
        // which must not count either. Many tries make the second likely to
        // show up if it were counted.
        for _ in 0..200 {
            assert!(!is_listening(addr));
        }
    }
}
