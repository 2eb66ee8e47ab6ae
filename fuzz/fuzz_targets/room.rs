//! Decoded and generated events inserted into a `Room`: no panic, the
//! replica's invariants hold after every insertion, and a fresh
//! `Room::load` of the same events agrees with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spaces_protocol_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    checks::check_room(data);
});
