//! Images: size without decoding, metadata stripped, thumbnails.
//!
//! All of this is blocking CPU work; the store runs it on its own bounded
//! pool (`Options::image_jobs` at once), never on an async thread.
//!
//! A decompression bomb is a small file that declares a huge canvas. The
//! canvas is read from the header first ([`dimensions`]) and refused past
//! `max_pixels` before a single pixel is decoded; the decoder is then given
//! that canvas as its limit too, so it cannot allocate more than it
//! declared (`image::Limits`: width and height are strict, its allocation
//! limit is best-effort, hence our own check first).

use std::io::Cursor;

use bytes::Bytes;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use img_parts::{ImageEXIF, jpeg::Jpeg, png::Png, webp::WebP};

use crate::BlobError;
use crate::sniff::ImageKind;

/// The thumbnails made of every image: the longer side in pixels. 128 fits
/// a file card or a reply preview, 512 the timeline at 2x on a phone.
pub const THUMB_SIZES: [u32; 2] = [128, 512];

/// Quality of JPEG thumbnails: small files, no visible blocks at 512 px.
const JPEG_QUALITY: u8 = 80;

/// An image as it will be stored.
#[derive(Debug)]
pub struct Processed {
    /// The file without its metadata.
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// One per [`THUMB_SIZES`] entry: (size, MIME type, bytes).
    pub thumbs: Vec<(u32, &'static str, Vec<u8>)>,
}

fn format(kind: ImageKind) -> ImageFormat {
    match kind {
        ImageKind::Jpeg => ImageFormat::Jpeg,
        ImageKind::Png => ImageFormat::Png,
        ImageKind::Gif => ImageFormat::Gif,
        ImageKind::WebP => ImageFormat::WebP,
    }
}

fn bad(e: impl std::fmt::Display) -> BlobError {
    BlobError::BadImage(e.to_string())
}

/// The canvas an image declares, read from its header alone.
pub fn dimensions(kind: ImageKind, bytes: &[u8]) -> Result<(u32, u32), BlobError> {
    ImageReader::with_format(Cursor::new(bytes), format(kind))
        .into_dimensions()
        .map_err(bad)
}

/// A photo-like JPEG of `width` x `height` (smooth gradients with fine
/// noise, quality 90, about what a phone camera writes): what
/// `spaces-bench media` times thumbnails of.
pub fn photo_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        image::Rgb([
            ((x * 255 / width.max(1)) as u8).wrapping_add(noise as u8),
            ((y * 255 / height.max(1)) as u8).wrapping_add(noise as u8),
            (((x + y) / 16) as u8).wrapping_add(noise as u8),
        ])
    }));
    let mut out = Cursor::new(Vec::new());
    image
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 90,
        ))
        .expect("encoding an image in memory");
    out.into_inner()
}

/// Checks the canvas, strips the metadata and makes the thumbnails.
pub fn process(kind: ImageKind, bytes: Vec<u8>, max_pixels: u64) -> Result<Processed, BlobError> {
    let (width, height) = canvas(kind, &bytes, max_pixels)?;
    let bytes = strip(kind, bytes)?;
    thumbnails(kind, bytes, width, height)
}

/// Checks the canvas and makes the thumbnails of an image kept byte for
/// byte: one fetched from another node, whose hash names these bytes
/// (its holder stripped it at upload).
pub fn describe(kind: ImageKind, bytes: Vec<u8>, max_pixels: u64) -> Result<Processed, BlobError> {
    let (width, height) = canvas(kind, &bytes, max_pixels)?;
    thumbnails(kind, bytes, width, height)
}

/// The declared canvas, refused past `max_pixels` (or empty).
fn canvas(kind: ImageKind, bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), BlobError> {
    let (width, height) = dimensions(kind, bytes)?;
    if u64::from(width) * u64::from(height) > max_pixels || width == 0 || height == 0 {
        return Err(BlobError::ImageTooLarge {
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok((width, height))
}

fn thumbnails(
    kind: ImageKind,
    bytes: Vec<u8>,
    width: u32,
    height: u32,
) -> Result<Processed, BlobError> {
    let image = decode(kind, &bytes, width, height)?;
    let mut thumbs = Vec::with_capacity(THUMB_SIZES.len());
    for px in THUMB_SIZES {
        thumbs.push(thumbnail(&image, px)?);
    }
    Ok(Processed {
        bytes,
        width,
        height,
        thumbs,
    })
}

/// Decodes the first frame (a GIF's or animated WebP's still), allowing the
/// decoder no more than the canvas it declared.
fn decode(
    kind: ImageKind,
    bytes: &[u8],
    width: u32,
    height: u32,
) -> Result<DynamicImage, BlobError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format(kind));
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // RGBA with 16 bits a channel, and as much again for the decoder's own
    // buffers: the most an honest image of this canvas needs.
    limits.max_alloc = Some(u64::from(width) * u64::from(height) * 8 * 2);
    reader.limits(limits);
    reader.decode().map_err(bad)
}

fn thumbnail(image: &DynamicImage, px: u32) -> Result<(u32, &'static str, Vec<u8>), BlobError> {
    let side = px.min(image.width().max(image.height()));
    let small = image.thumbnail(side, side);
    let mut out = Cursor::new(Vec::new());
    let mime = if small.color().has_alpha() {
        small
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .map_err(bad)?;
        "image/png"
    } else {
        DynamicImage::ImageRgb8(small.to_rgb8())
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out,
                JPEG_QUALITY,
            ))
            .map_err(bad)?;
        "image/jpeg"
    };
    Ok((px, mime, out.into_inner()))
}

/// The image without EXIF, XMP, comments, text chunks or other metadata,
/// rewritten segment by segment (no re-encoding, so no quality loss). Kept:
/// what decoding needs and colour (JFIF, Adobe, ICC profiles; PNG's
/// transparency, gamma and colour chunks; animation). GIF is stored as it
/// is: it carries no EXIF.
pub fn strip(kind: ImageKind, bytes: Vec<u8>) -> Result<Vec<u8>, BlobError> {
    let bytes = Bytes::from(bytes);
    Ok(match kind {
        ImageKind::Jpeg => {
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(bad)?;
            jpeg.segments_mut()
                .retain(|s| keep_jpeg(s.marker(), s.contents()));
            jpeg.encoder().bytes().to_vec()
        }
        ImageKind::Png => {
            let mut png = Png::from_bytes(bytes).map_err(bad)?;
            png.chunks_mut().retain(|c| KEEP_PNG.contains(&c.kind()));
            png.encoder().bytes().to_vec()
        }
        ImageKind::WebP => {
            let mut webp = WebP::from_bytes(bytes).map_err(bad)?;
            webp.remove_chunks_by_id(*b"XMP ");
            // Also clears the VP8X header's EXIF flag.
            webp.set_exif(None);
            webp.encoder().bytes().to_vec()
        }
        ImageKind::Gif => bytes.to_vec(),
    })
}

/// JPEG segments kept: everything but APPn and comments, except JFIF
/// (APP0), ICC profiles (APP2 `ICC_PROFILE`) and Adobe's colour transform
/// (APP14), which decoding needs. EXIF and XMP are APP1; APP2 `MPF` holds
/// whole further images with their own EXIF.
fn keep_jpeg(marker: u8, contents: &[u8]) -> bool {
    match marker {
        0xE0 => contents.starts_with(b"JFIF\0"),
        0xE2 => contents.starts_with(b"ICC_PROFILE\0"),
        0xEE => contents.starts_with(b"Adobe"),
        0xE1..=0xEF | 0xFE => false,
        _ => true,
    }
}

/// PNG chunks kept: the critical ones, transparency, colour and animation.
/// Gone: tEXt, zTXt, iTXt, eXIf, tIME and anything else.
const KEEP_PNG: &[[u8; 4]] = &[
    *b"IHDR", *b"PLTE", *b"IDAT", *b"IEND", *b"tRNS", *b"gAMA", *b"cHRM", *b"sRGB", *b"iCCP",
    *b"sBIT", *b"acTL", *b"fcTL", *b"fdAT",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{jpeg_with_exif, png_bomb};

    #[test]
    fn jpeg_metadata_is_stripped_and_thumbnails_made() {
        let jpeg = jpeg_with_exif(640, 480);
        assert!(jpeg.windows(11).any(|w| w == b"GPSLatitude"));
        let out = process(ImageKind::Jpeg, jpeg, 1_000_000).unwrap();
        assert_eq!((out.width, out.height), (640, 480));
        assert!(!out.bytes.windows(11).any(|w| w == b"GPSLatitude"));
        assert!(!out.bytes.windows(6).any(|w| w == b"secret"));
        assert_eq!(dimensions(ImageKind::Jpeg, &out.bytes).unwrap(), (640, 480));
        let sizes: Vec<_> = out
            .thumbs
            .iter()
            .map(|(px, mime, bytes)| (*px, *mime, dimensions(ImageKind::Jpeg, bytes).unwrap()))
            .collect();
        assert_eq!(
            sizes,
            [
                (128, "image/jpeg", (128, 96)),
                (512, "image/jpeg", (512, 384))
            ]
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        let bomb = png_bomb(100_000, 100_000);
        assert!(bomb.len() < 200);
        match process(ImageKind::Png, bomb, 40_000_000) {
            Err(BlobError::ImageTooLarge { width, height, .. }) => {
                assert_eq!((width, height), (100_000, 100_000))
            }
            other => panic!("{other:?}"),
        }
        // Under the limit but lying about its data: a clean error, no panic.
        assert!(matches!(
            process(ImageKind::Png, png_bomb(2000, 2000), 40_000_000),
            Err(BlobError::BadImage(_))
        ));
    }

    #[test]
    fn png_text_chunks_are_stripped() {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(image::RgbaImage::new(4, 4))
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .unwrap();
        let mut png = Png::from_bytes(out.into_inner().into()).unwrap();
        png.chunks_mut().insert(
            1,
            img_parts::png::PngChunk::new(*b"tEXt", Bytes::from_static(b"GPS\0here")),
        );
        let bytes = png.encoder().bytes().to_vec();
        let out = process(ImageKind::Png, bytes, 100).unwrap();
        assert!(!out.bytes.windows(4).any(|w| w == b"tEXt"));
        assert_eq!(out.thumbs[0].1, "image/png", "alpha keeps PNG");
    }

    #[test]
    fn garbage_is_a_bad_image() {
        for kind in [
            ImageKind::Jpeg,
            ImageKind::Png,
            ImageKind::Gif,
            ImageKind::WebP,
        ] {
            assert!(matches!(
                process(kind, b"\xFF\xD8\xFF garbage".to_vec(), 100),
                Err(BlobError::BadImage(_))
            ));
        }
    }
}
