//! The checks behind the fuzz targets. They live in `checks.rs` and
//! `wire_checks.rs` so that `protocol/tests/protocol/fuzz_smoke.rs` and
//! `crates/federation/tests/wire_fuzz_smoke.rs` can include the very same
//! files and run them on stable, without libFuzzer.

pub mod bao_checks;
pub mod checks;
pub mod media_checks;
pub mod wire_checks;
