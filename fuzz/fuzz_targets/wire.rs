//! Any bytes as a federation sync stream (`spaces_federation::wire`): the
//! first byte picks a request frame (even) or a response frame (odd). No
//! panic; an oversized length prefix is refused from the prefix alone; a
//! decoded message round-trips. Run with `-malloc_limit_mb` to catch an
//! allocation the length checks should have prevented (README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spaces_protocol_fuzz::wire_checks;

fuzz_target!(|data: &[u8]| {
    wire_checks::check_wire(data);
});
