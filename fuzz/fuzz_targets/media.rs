//! Any bytes through the media ingestion path: sniffing, name sanitizing,
//! metadata stripping, the canvas bound, decoding and thumbnails. The first
//! byte picks the image format the rest is treated as.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spaces_protocol_fuzz::media_checks;

fuzz_target!(|data: &[u8]| {
    media_checks::check_media(data);
});
