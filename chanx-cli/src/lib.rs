//! The `chanx` command line, as a library: TypeScript clients generated from
//! AsyncAPI documents ([`typescript`]), and checks of documents ([`check`]).
//!
//! ```sh
//! chanx typescript examples/chat/asyncapi.json --out examples/chat/client
//! chanx asyncapi validate examples/chat/asyncapi.json
//! chanx asyncapi diff old.json new.json
//! ```
//!
//! From Rust, [`typescript::generate`] returns the files and
//! [`assert_current`] keeps a committed copy honest in a test:
//!
//! ```
//! let document = serde_json::json!({
//!     "asyncapi": "3.0.0",
//!     "info": {"title": "Empty", "version": "1"},
//!     "channels": {},
//!     "operations": {}
//! });
//! let files = chanx_cli::typescript::generate(&document).unwrap();
//! assert!(files.contains_key("runtime.ts") && files.contains_key("index.ts"));
//! ```

pub mod check;
pub mod typescript;

use std::path::Path;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not JSON.
    #[error("{path} is not JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The document lacks something the command needs.
    #[error("the document cannot be used: {0}")]
    Document(String),
}

/// Reads a JSON document.
///
/// # Errors
///
/// [`Error::Io`] or [`Error::Json`].
pub fn read_document(path: &Path) -> Result<serde_json::Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `files` into `dir` (created if missing), removing the `.ts`
/// files there that are no longer generated.
///
/// # Errors
///
/// [`Error::Io`].
pub fn write_files(files: &typescript::Files, dir: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let stale = path.extension().is_some_and(|extension| extension == "ts")
            && path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| !files.contains_key(name));
        if stale {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

/// The differences between `files` and the `.ts` files in `dir`, as
/// readable lines (empty: current).
#[must_use]
pub fn stale_files(files: &typescript::Files, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, text) in files {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(committed) if committed == *text => {}
            Ok(_) => problems.push(format!("{name} differs")),
            Err(_) => problems.push(format!("{name} is missing")),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ts") && !files.contains_key(&name) {
                problems.push(format!("{name} is no longer generated"));
            }
        }
    }
    problems.sort();
    problems
}

/// Panics, naming `refresh` (the command that rewrites them), when the
/// TypeScript generated from `document` differs from the files in `dir`:
/// for a test beside committed generated code.
///
/// # Panics
///
/// When the files are stale, or the document cannot be used.
pub fn assert_current(document: &serde_json::Value, dir: &Path, refresh: &str) {
    let files = match typescript::generate(document) {
        Ok(files) => files,
        Err(error) => panic!("cannot generate TypeScript: {error}"),
    };
    let stale = stale_files(&files, dir);
    assert!(
        stale.is_empty(),
        "the TypeScript client in {} is stale ({}); refresh it with:\n    {refresh}",
        dir.display(),
        stale.join(", ")
    );
}

/// A test that the TypeScript client committed in `dir` is what
/// `chanx typescript` generates from `router`'s AsyncAPI document, failing
/// with the `refresh` command when it is stale; for the tests of a crate
/// that commits its generated client (as every example does).
///
/// ```ignore
/// chanx_cli::typescript_client_test!(
///     my_app::app(),
///     dir = concat!(env!("CARGO_MANIFEST_DIR"), "/client"),
///     refresh = "cargo run -p chanx-cli -- typescript asyncapi.json --out client",
/// );
/// ```
#[macro_export]
macro_rules! typescript_client_test {
    ($router:expr, dir = $dir:expr, refresh = $refresh:expr $(,)?) => {
        #[test]
        fn committed_typescript_client_is_current() {
            let document = $router
                .asyncapi_json()
                .expect("the router has an AsyncAPI document (Router::with_asyncapi)");
            $crate::assert_current_json(&document, ::std::path::Path::new($dir), $refresh);
        }
    };
}

/// [`assert_current`] for a document given as JSON text.
///
/// # Panics
///
/// When the text is not JSON, or as [`assert_current`].
pub fn assert_current_json(document: &str, dir: &Path, refresh: &str) {
    match serde_json::from_str(document) {
        Ok(document) => assert_current(&document, dir, refresh),
        Err(error) => panic!("the AsyncAPI document is not JSON: {error}"),
    }
}
