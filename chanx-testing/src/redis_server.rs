//! A real `redis-server` for tests, on a free loopback port.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process started for a test, killed on drop.
///
/// It listens on `127.0.0.1` on a free port, keeps nothing on disk, and can be
/// killed and restarted on the same port to test reconnection.
#[derive(Debug)]
pub struct RedisServer {
    addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    password: Option<String>,
}

/// `redis-server` could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisServerError {
    /// The binary is not installed.
    #[error(
        "redis-server is not installed (run scripts/test, or apt-get install redis-server): {0}"
    )]
    NotInstalled(std::io::Error),
    /// It started but did not accept connections in time.
    #[error("redis-server did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
    /// Another I/O failure.
    #[error("cannot run redis-server: {0}")]
    Io(#[from] std::io::Error),
}

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// [`RedisServerError::NotInstalled`] when `redis-server` is not on the
    /// `PATH`.
    pub fn start() -> Result<Self, RedisServerError> {
        Self::start_inner(None)
    }

    /// Starts a server that requires `password` (`requirepass`); its
    /// [`url`](RedisServer::url) carries the password.
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`].
    pub fn start_with_password(password: &str) -> Result<Self, RedisServerError> {
        Self::start_inner(Some(password.to_owned()))
    }

    fn start_inner(password: Option<String>) -> Result<Self, RedisServerError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!("chanx-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            addr,
            dir,
            child: None,
            password,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), RedisServerError> {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisServerError::NotInstalled)?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if crate::is_listening(self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(RedisServerError::NotListening(self.addr))
    }

    /// The URL to connect to, `redis://127.0.0.1:PORT/` (with
    /// `:password@` when the server requires one).
    #[must_use]
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@{}/", self.addr),
            None => format!("redis://{}/", self.addr),
        }
    }

    /// The address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the server (as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
