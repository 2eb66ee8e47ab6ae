//! What a file is, from its bytes, and what its name may be.
//!
//! The client's `Content-Type` is never trusted: [`sniff`] reads the magic
//! numbers (infer). A recognised type must be on [`ALLOWED`]; bytes infer
//! does not recognise (plain text, source code, SVG without an XML
//! declaration) are stored as `application/octet-stream` and always served
//! as an attachment. Executables, scripts and the like are refused.

use crate::BlobError;

/// How many leading bytes the sniffer reads: enough for every magic number
/// infer knows (the deepest, tar's, is at offset 257; ZIP-based office
/// formats look at the first local file names).
pub const SNIFF_BYTES: usize = 8192;

/// The one type given to bytes nobody recognises.
pub const UNKNOWN: &str = "application/octet-stream";

/// Recognised types a node stores. Everything else infer recognises is refused.
pub const ALLOWED: &[&str] = &[
    // Images we decode, strip and thumbnail.
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    // Stored as they are: never decoded by the node.
    "image/avif",
    "image/heif",
    "image/bmp",
    "image/tiff",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "video/x-matroska",
    "video/x-m4v",
    "audio/mpeg",
    "audio/ogg",
    "audio/opus",
    "audio/aac",
    "audio/m4a",
    "audio/x-flac",
    "audio/x-wav",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/x-7z-compressed",
    "application/x-xz",
    "application/zstd",
    "application/epub+zip",
    "application/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    // Markup is kept but only ever served as an attachment in a sandbox.
    "text/html",
    "text/xml",
];

/// The image formats the node decodes (dimensions, metadata, thumbnails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl ImageKind {
    pub fn from_mime(mime: &str) -> Option<ImageKind> {
        Some(match mime {
            "image/jpeg" => ImageKind::Jpeg,
            "image/png" => ImageKind::Png,
            "image/gif" => ImageKind::Gif,
            "image/webp" => ImageKind::WebP,
            _ => return None,
        })
    }
}

/// The type of a file from its first bytes (at most [`SNIFF_BYTES`]
/// needed): a type on [`ALLOWED`], [`UNKNOWN`], or `Unsupported`.
pub fn sniff(head: &[u8]) -> Result<&'static str, BlobError> {
    match infer::get(head) {
        None => Ok(UNKNOWN),
        Some(kind) => ALLOWED
            .iter()
            .find(|allowed| **allowed == kind.mime_type())
            .copied()
            .ok_or_else(|| BlobError::Unsupported {
                mime: kind.mime_type().to_owned(),
            }),
    }
}

/// Whether a browser may show this type inline: images the node decoded
/// (and stripped), audio and video. Everything else, SVG and HTML above
/// all, is served as an attachment.
pub fn inline_safe(mime: &str) -> bool {
    ImageKind::from_mime(mime).is_some()
        || (ALLOWED.contains(&mime) && (mime.starts_with("audio/") || mime.starts_with("video/")))
}

/// The longest name kept, in bytes: what most file systems allow.
pub const MAX_NAME_BYTES: usize = 255;

/// A file name safe to show and to put in a `Content-Disposition` header:
/// the last path component, without control, bidirectional or invisible
/// formatting characters, without quotes and the characters file systems
/// refuse, no leading or trailing dots and spaces, at most
/// [`MAX_NAME_BYTES`]. What is left empty becomes `file`.
pub fn sanitize_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean = String::with_capacity(base.len());
    for c in base.chars() {
        if c.is_control() || is_format(c) {
            continue;
        }
        let c = if matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*' | ';') {
            '_'
        } else {
            c
        };
        if clean.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        clean.push(c);
    }
    let trimmed = clean.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Invisible and bidirectional formatting characters (a name like
/// `invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header: infer wants more than the magic number.
    const ELF: [u8; 64] = {
        let mut elf = [0u8; 64];
        let head = *b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0";
        let mut i = 0;
        while i < head.len() {
            elf[i] = head[i];
            i += 1;
        }
        elf
    };

    #[test]
    fn sniffs_from_bytes_against_the_allow_list() {
        let table: &[(&[u8], Result<&str, &str>)] = &[
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", Ok("image/jpeg")),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Ok("image/png")),
            (b"GIF89a\x01\0\x01\0", Ok("image/gif")),
            (b"%PDF-1.7\n", Ok("application/pdf")),
            (b"hello, plain text", Ok(UNKNOWN)),
            (
                b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
                Ok(UNKNOWN),
            ),
            (&ELF, Err("application/x-executable")),
            (
                b"MZ\x90\0\x03\0\0\0",
                Err("application/vnd.microsoft.portable-executable"),
            ),
            (b"#!/bin/sh\necho hi\n", Err("text/x-shellscript")),
            (b"\0asm\x01\0\0\0", Err("application/wasm")),
        ];
        for (bytes, want) in table {
            match (sniff(bytes), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{bytes:?}"),
                (Err(BlobError::Unsupported { mime }), Err(want)) => {
                    assert_eq!(mime, *want, "{bytes:?}")
                }
                (got, want) => panic!("{bytes:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn only_decoded_images_audio_and_video_are_inline() {
        assert!(inline_safe("image/png"));
        assert!(inline_safe("video/mp4"));
        assert!(inline_safe("audio/ogg"));
        assert!(!inline_safe("image/svg+xml"));
        assert!(!inline_safe("text/html"));
        assert!(!inline_safe("image/tiff"));
        assert!(!inline_safe(UNKNOWN));
        assert!(!inline_safe("audio/x-made-up"));
    }

    #[test]
    fn names_are_sanitized() {
        let table = [
            ("photo.jpg", "photo.jpg"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\cv.pdf", "cv.pdf"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("a\"b;c\r\nd.txt", "a_b_cd.txt"),
            ("  ..hidden.. ", "hidden"),
            ("..", "file"),
            ("", "file"),
            ("\u{200B}", "file"),
        ];
        for (input, want) in table {
            assert_eq!(sanitize_name(input), want, "{input:?}");
        }
        let long = "é".repeat(300);
        let clean = sanitize_name(&long);
        assert!(clean.len() <= MAX_NAME_BYTES && clean.chars().all(|c| c == 'é'));
    }
}
