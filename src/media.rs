//! Images uploaded as permanent material (docs/wechat.md §12): checked here before any call (JPEG or
//! PNG by their bytes, at most 10 MB, dimensions bounded before decoding), uploaded through
//! `material/add_material`, and kept with a thumbnail drawn here for the admin area.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rgb::FromSlice;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::store::{Media, Store, StoreError};
use crate::upstream::account::Account;
use crate::upstream::{ApiError, FilePart};

/// WeChat's limit for an image as permanent material.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// The longest side of a thumbnail, in pixels.
const THUMBNAIL_SIDE: u32 = 240;
/// Images wider or taller than this are refused before decoding (a small file can claim a huge image).
const MAX_SIDE: u32 = 12_000;
/// The most a decoded image may take in memory.
const MAX_DECODED_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Refused before any call: the sentence says why.
    #[error("{0}")]
    Invalid(String),
    /// Over WeChat's size limit, refused before any call.
    #[error("the image is {0:.1} MB; WeChat takes at most 10 MB")]
    TooLarge(f64),
    #[error("WeChat refused the upload: {0}")]
    WeChat(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An image as a form posted it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub bytes: axum::body::Bytes,
}

/// The formats WeChat takes as image material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

/// The image's format from its first bytes (never from the name or the type the browser claims).
fn format(bytes: &[u8]) -> Option<ImageFormat> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some(ImageFormat::Jpeg),
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n', ..] => Some(ImageFormat::Png),
        _ => None,
    }
}

/// A decoded image: width, height and 8-bit RGBA pixels.
struct Rgba {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

fn unreadable(e: impl std::fmt::Display) -> MediaError {
    MediaError::Invalid(format!("the image cannot be read: {e}"))
}

fn too_wide(width: u32, height: u32) -> Option<MediaError> {
    (width > MAX_SIDE || height > MAX_SIDE).then(|| {
        MediaError::Invalid(format!(
            "the image is {width}×{height} pixels; at most {MAX_SIDE} on a side are taken"
        ))
    })
}

/// Decodes a JPEG, its size checked from its header first.
fn decode_jpeg(bytes: &[u8]) -> Result<Rgba, MediaError> {
    // The size is checked below, from the header, with the same sentence as a PNG's.
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGBA);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(unreadable)?;
    let (width, height) = decoder.dimensions().ok_or_else(|| unreadable("no frame"))?;
    let (width, height) = (width as u32, height as u32);
    if let Some(refused) = too_wide(width, height) {
        return Err(refused);
    }
    let pixels = decoder.decode().map_err(unreadable)?;
    if decoder.output_colorspace() != Some(ColorSpace::RGBA) {
        return Err(unreadable("an unusual colour space"));
    }
    Ok(Rgba {
        width,
        height,
        pixels,
    })
}

/// Decodes a PNG (any colour type and depth, as 8-bit RGBA), its size checked from its header first.
fn decode_png(bytes: &[u8]) -> Result<Rgba, MediaError> {
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(unreadable)?;
    let (width, height) = (reader.info().width, reader.info().height);
    if let Some(refused) = too_wide(width, height) {
        return Err(refused);
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| unreadable("too large"))?;
    let mut frame = vec![0; size];
    let info = reader.next_frame(&mut frame).map_err(unreadable)?;
    frame.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Rgba => frame,
        png::ColorType::Rgb => frame
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => frame
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => frame.iter().flat_map(|&v| [v, v, v, 255]).collect(),
        png::ColorType::Indexed => return Err(unreadable("a palette left unexpanded")),
    };
    Ok(Rgba {
        width: info.width,
        height: info.height,
        pixels,
    })
}

/// Encodes 8-bit pixels of `color` as a PNG.
pub(crate) fn encode_png(width: u32, height: u32, color: png::ColorType, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .expect("writing a PNG header in memory does not fail");
    writer
        .write_image_data(pixels)
        .expect("the pixels fill the PNG's frame");
    writer
        .finish()
        .expect("finishing a PNG in memory does not fail");
    out
}

/// The image scaled to fit [`THUMBNAIL_SIDE`] (never enlarged), as a PNG.
fn thumbnail(image: &Rgba) -> Result<Vec<u8>, MediaError> {
    let scale = (f64::from(THUMBNAIL_SIDE) / f64::from(image.width.max(image.height))).min(1.0);
    let fit = |side: u32| ((f64::from(side) * scale).round() as u32).max(1);
    let (width, height) = (fit(image.width), fit(image.height));
    let mut pixels = vec![0; width as usize * height as usize * 4];
    resize::new(
        image.width as usize,
        image.height as usize,
        width as usize,
        height as usize,
        resize::Pixel::RGBA8P,
        resize::Type::Triangle,
    )
    .and_then(|mut resizer| resizer.resize(image.pixels.as_rgba(), pixels.as_rgba_mut()))
    .map_err(|e| MediaError::Invalid(format!("the thumbnail cannot be drawn: {e}")))?;
    Ok(encode_png(width, height, png::ColorType::Rgba, &pixels))
}

/// Checks the image against WeChat's rules and draws its thumbnail (PNG); or why it is refused.
pub fn check(upload: &Upload) -> Result<(ImageFormat, Vec<u8>), MediaError> {
    let bytes = &upload.bytes;
    if bytes.is_empty() {
        return Err(MediaError::Invalid("the file is empty".into()));
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(MediaError::TooLarge(bytes.len() as f64 / 1_048_576.0));
    }
    let Some(kind) = format(bytes) else {
        return Err(MediaError::Invalid(
            "only JPEG and PNG images are taken".into(),
        ));
    };
    let image = match kind {
        ImageFormat::Jpeg => decode_jpeg(bytes)?,
        ImageFormat::Png => decode_png(bytes)?,
    };
    Ok((kind, thumbnail(&image)?))
}

/// Checks `upload`, sends it to WeChat as permanent material and keeps it; returns what was kept.
pub async fn upload(
    store: &Store,
    account: &Account,
    upload: &Upload,
    created_by: &str,
) -> Result<Media, MediaError> {
    // Decoding a large photo takes a few hundred milliseconds: off the threads that answer requests.
    let checked = upload.clone();
    let (kind, thumbnail) = tokio::task::spawn_blocking(move || check(&checked))
        .await
        .map_err(|e| MediaError::Invalid(format!("the image cannot be read: {e}")))??;
    let (content_type, extension) = match kind {
        ImageFormat::Png => ("image/png", "png"),
        ImageFormat::Jpeg => ("image/jpeg", "jpg"),
    };
    // WeChat reads the type from the name's extension: the name sent is ours.
    let file = FilePart {
        filename: format!("image.{extension}"),
        content_type,
        bytes: upload.bytes.clone(),
    };
    let material = account.add_image(&file).await?;
    let media = Media {
        id: 0,
        media_id: material.media_id,
        url: material.url,
        filename: upload.filename.chars().take(200).collect(),
        content_type: content_type.into(),
        size: upload.bytes.len() as i64,
        thumbnail: STANDARD.encode(thumbnail),
        created_by: created_by.into(),
        created_at: 0,
    };
    store.add_media(&media).await?;
    tracing::info!(
        size = media.size,
        created_by,
        "image uploaded as permanent material"
    );
    Ok(media)
}

/// A stored thumbnail's PNG bytes.
pub fn thumbnail_png(media: &Media) -> Vec<u8> {
    STANDARD.decode(&media.thumbnail).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image made, and its thumbnail read back, by another library.
    fn encoded(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn green(width: u32, height: u32) -> image::DynamicImage {
        image::RgbImage::from_pixel(width, height, image::Rgb([7, 193, 96])).into()
    }

    fn upload(bytes: Vec<u8>) -> Upload {
        Upload {
            filename: "a.png".into(),
            bytes: bytes.into(),
        }
    }

    /// The thumbnail's size and its middle pixel.
    fn thumbnail_of(bytes: Vec<u8>) -> (ImageFormat, (u32, u32), [u8; 4]) {
        let (kind, thumbnail) = check(&upload(bytes)).unwrap();
        let thumb = image::load_from_memory(&thumbnail).unwrap().to_rgba8();
        let middle = thumb.get_pixel(thumb.width() / 2, thumb.height() / 2).0;
        (kind, thumb.dimensions(), middle)
    }

    #[test]
    fn an_image_gets_a_small_thumbnail_of_its_colours() {
        let (kind, size, middle) = thumbnail_of(encoded(green(800, 400), image::ImageFormat::Png));
        assert_eq!(
            (kind, size, middle),
            (ImageFormat::Png, (240, 120), [7, 193, 96, 255])
        );

        // A JPEG, upright: its colours survive within JPEG's loss.
        let (kind, size, [r, g, b, a]) =
            thumbnail_of(encoded(green(300, 600), image::ImageFormat::Jpeg));
        assert_eq!((kind, size, a), (ImageFormat::Jpeg, (120, 240), 255));
        assert!(r.abs_diff(7) < 8 && g.abs_diff(193) < 8 && b.abs_diff(96) < 8);

        // 16-bit grey with transparency, and a small image (never enlarged).
        let grey = image::ImageBuffer::from_pixel(100, 50, image::LumaA([40_000u16, 65_535]));
        let (_, size, middle) = thumbnail_of(encoded(
            image::DynamicImage::ImageLumaA16(grey),
            image::ImageFormat::Png,
        ));
        assert_eq!((size, middle), ((100, 50), [156, 156, 156, 255]));
    }

    #[test]
    fn anything_else_gets_a_reason_before_it_is_decoded() {
        let refused = |bytes: Vec<u8>| check(&upload(bytes)).unwrap_err().to_string();
        assert_eq!(refused(Vec::new()), "the file is empty");
        assert_eq!(
            refused(b"GIF89a....".to_vec()),
            "only JPEG and PNG images are taken"
        );
        assert!(refused(vec![0xFF, 0xD8, 0xFF, 0x00]).starts_with("the image cannot be read"));
        let mut truncated = encoded(green(64, 64), image::ImageFormat::Png);
        truncated.truncate(truncated.len() / 2);
        assert!(refused(truncated).starts_with("the image cannot be read"));
        assert_eq!(
            refused(vec![0; MAX_IMAGE_BYTES + 1]),
            "the image is 10.0 MB; WeChat takes at most 10 MB"
        );

        // Under a kilobyte that claims 20,000 × 20,000 pixels (1.6 GB decoded): refused from the header.
        let mut header = Vec::new();
        {
            use std::io::Write;
            let mut encoder = png::Encoder::new(&mut header, 20_000, 20_000);
            encoder.set_color(png::ColorType::Rgb);
            let mut writer = encoder.write_header().unwrap();
            let mut rows = writer.stream_writer().unwrap();
            rows.write_all(&[0; 60_000]).unwrap();
            rows.flush().unwrap();
        }
        assert!(header.len() < 1_000, "{} bytes", header.len());
        assert_eq!(
            refused(header),
            "the image is 20000×20000 pixels; at most 12000 on a side are taken"
        );
    }
}
