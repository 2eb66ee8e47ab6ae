//! The checks behind the fuzz targets. They live in `checks.rs` so that
//! `protocol/tests/protocol/fuzz_smoke.rs` can include the very same file and
//! run them on stable, without libFuzzer.

pub mod checks;
