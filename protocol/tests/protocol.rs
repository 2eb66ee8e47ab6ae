//! The protocol crate's integration tests: one binary, a module per area.
//!
//! - `vectors`: the wire test vectors in `protocol/vectors/`.
//! - `auth_rules`: each auth rule accepting and refusing.
//! - `adversarial`: hostile input, each refused with its own reason.
//! - `convergence`: state resolution and replicas agreeing (proptest).
//! - `fuzz_smoke`: the fuzz targets' checks on mutated frames, on stable.
//! - `purity`: the dependency tree stays free of I/O crates.
//!
//! The modules live in `tests/protocol/`; `#[path]` keeps this one file the
//! only test target (each target is a separate link).

#[path = "protocol/adversarial.rs"]
mod adversarial;
#[path = "protocol/auth_rules.rs"]
mod auth_rules;
#[path = "protocol/convergence.rs"]
mod convergence;
#[path = "protocol/fuzz_smoke.rs"]
mod fuzz_smoke;
#[path = "protocol/json.rs"]
mod json;
#[path = "protocol/purity.rs"]
mod purity;
#[path = "protocol/support.rs"]
mod support;
#[path = "protocol/vectors.rs"]
mod vectors;
