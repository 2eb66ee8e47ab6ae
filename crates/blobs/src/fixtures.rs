//! Files for tests: made by code, so no test depends on a binary in the
//! repository. Built for this crate's tests and, with the `fixtures`
//! feature, for the node's integration tests and the fuzz targets.

use std::io::Cursor;

use bytes::Bytes;
use image::DynamicImage;
use img_parts::jpeg::Jpeg;
use img_parts::png::Png;

/// A small RGB JPEG with a GPS EXIF segment and a comment.
pub fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let mut out = Cursor::new(Vec::new());
    image
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 90,
        ))
        .unwrap();
    let mut jpeg = Jpeg::from_bytes(out.into_inner().into()).unwrap();
    let exif = [&b"Exif\0\0MM\0*\0\0\0\x08GPSLatitude=48.8584"[..]].concat();
    jpeg.segments_mut().insert(
        1,
        img_parts::jpeg::JpegSegment::new_with_contents(0xE1, exif.into()),
    );
    jpeg.segments_mut().insert(
        1,
        img_parts::jpeg::JpegSegment::new_with_contents(
            0xFE,
            Bytes::from_static(b"secret comment"),
        ),
    );
    jpeg.encoder().bytes().to_vec()
}

/// A PNG that declares `width` x `height` but holds one row of data.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut small = Cursor::new(Vec::new());
    DynamicImage::ImageLuma8(image::GrayImage::new(1, 1))
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut small))
        .unwrap();
    let mut png = Png::from_bytes(small.into_inner().into()).unwrap();
    let ihdr = png.chunk_by_type(*b"IHDR").unwrap().contents().to_vec();
    let mut header = ihdr.clone();
    header[0..4].copy_from_slice(&width.to_be_bytes());
    header[4..8].copy_from_slice(&height.to_be_bytes());
    png.chunks_mut()[0] = img_parts::png::PngChunk::new(*b"IHDR", header.into());
    png.encoder().bytes().to_vec()
}

/// A PNG with a `tEXt` chunk holding `GPS` data.
pub fn png_with_text(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(image::RgbaImage::new(width, height))
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .unwrap();
    let mut png = Png::from_bytes(out.into_inner().into()).unwrap();
    png.chunks_mut().insert(
        1,
        img_parts::png::PngChunk::new(*b"tEXt", Bytes::from_static(b"GPS\0here")),
    );
    png.encoder().bytes().to_vec()
}
