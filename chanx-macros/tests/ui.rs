//! Compile-time behaviour of the macros: what compiles, and the exact errors
//! (with spans on the user's code) for what must not.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! chanx-macros --test ui` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*/*.rs");
}
