//! Any bytes as a ban-list pattern and a text (split at the first 0 byte,
//! read as UTF-8 lossily): parsing never panics, and a parsed glob matches
//! as its definition says (`checks::check_glob`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spaces_protocol_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    let (pattern, text) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    checks::check_glob(
        &String::from_utf8_lossy(pattern),
        &String::from_utf8_lossy(text),
    );
});
