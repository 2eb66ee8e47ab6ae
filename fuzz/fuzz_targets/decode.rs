//! Any bytes through `Event::decode`: no panic, and a decoded event
//! re-encodes to the same bytes and id. The first byte picks the mode: odd
//! feeds the rest as a frame; even signs the rest as a body with a fixed key,
//! so the fuzzer reaches the body decoder past the signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spaces_protocol_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => {
            checks::check_signed_body(rest);
        }
        _ => {
            checks::check_decode(data);
        }
    }
});
