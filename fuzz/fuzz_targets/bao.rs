//! Any bytes as another node's encoding of a range of chunk groups
//! (`BlobBao`), verified against a known blob's hash. The first three
//! bytes pick the blob and the range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spaces_protocol_fuzz::bao_checks;

fuzz_target!(|data: &[u8]| {
    bao_checks::check_bao(data);
});
