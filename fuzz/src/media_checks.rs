//! Properties of the media ingestion path (`spaces-blobs`): sniffing, file
//! names and images. Included by `crates/blobs/tests/media_fuzz_smoke.rs`
//! too, so a stable `cargo test` runs the very same checks.

use spaces_blobs::picture;
use spaces_blobs::sniff::{self, ImageKind};

/// The canvas limit under fuzzing: small, so a decode stays cheap, and the
/// bound is what is tested.
pub const FUZZ_MAX_PIXELS: u64 = 1 << 20;

/// The first byte picks an image kind; the rest is the file. Never panics;
/// a sniffed type is on the allow-list; a sanitized name is safe; an image
/// that passes keeps its canvas after stripping, fits the pixel bound, and
/// its thumbnails decode no larger than their size.
pub fn check_media(data: &[u8]) {
    let Some((mode, file)) = data.split_first() else {
        return;
    };
    if let Ok(mime) = sniff::sniff(file) {
        assert!(mime == sniff::UNKNOWN || sniff::ALLOWED.contains(&mime));
    }
    check_name(&String::from_utf8_lossy(file));
    let kind = [
        ImageKind::Jpeg,
        ImageKind::Png,
        ImageKind::Gif,
        ImageKind::WebP,
    ][usize::from(mode % 4)];
    let _ = picture::strip(kind, file.to_vec());
    if let Ok(out) = picture::process(kind, file.to_vec(), FUZZ_MAX_PIXELS) {
        assert!(u64::from(out.width) * u64::from(out.height) <= FUZZ_MAX_PIXELS);
        assert_eq!(
            picture::dimensions(kind, &out.bytes).ok(),
            Some((out.width, out.height)),
            "stripping keeps the canvas"
        );
        assert_eq!(out.thumbs.len(), picture::THUMB_SIZES.len());
        for (px, mime, bytes) in &out.thumbs {
            let thumb_kind = ImageKind::from_mime(mime).expect("a thumbnail is an image");
            let (w, h) = picture::dimensions(thumb_kind, bytes).expect("a thumbnail decodes");
            assert!(w.max(h) <= *px, "{w}x{h} within {px}");
        }
    }
}

/// A sanitized name is non-empty, at most 255 bytes, one path component,
/// and carries nothing that breaks a header or hides its extension.
pub fn check_name(name: &str) {
    let clean = sniff::sanitize_name(name);
    assert!(!clean.is_empty() && clean.len() <= sniff::MAX_NAME_BYTES);
    assert!(!clean.contains(['/', '\\', '"', ';']));
    assert!(!clean.chars().any(char::is_control));
    assert!(!clean.contains(['\u{202E}', '\u{200B}', '\u{FEFF}']));
    assert!(clean != "." && clean != "..");
    assert_eq!(
        sniff::sanitize_name(&clean),
        clean,
        "sanitizing is idempotent"
    );
}
