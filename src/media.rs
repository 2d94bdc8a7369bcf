//! Images uploaded as permanent material (docs/wechat.md §12): checked here before any call (JPEG or
//! PNG by their bytes, at most 10 MB, dimensions bounded before decoding), uploaded through
//! `material/add_material`, and kept with a thumbnail drawn here for the admin area.

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::{ImageFormat, ImageReader, Limits};

use crate::store::{Media, Store, StoreError};
use crate::upstream::account::Account;
use crate::upstream::{ApiError, FilePart};

/// WeChat's limit for an image as permanent material.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// The longest side of a thumbnail, in pixels.
const THUMBNAIL_SIDE: u32 = 240;
/// Images wider or taller than this are refused before decoding (a small file can claim a huge image).
const MAX_SIDE: u32 = 12_000;

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

/// The image's format from its first bytes (never from the name or the type the browser claims).
fn format(bytes: &[u8]) -> Option<ImageFormat> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some(ImageFormat::Jpeg),
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n', ..] => Some(ImageFormat::Png),
        _ => None,
    }
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
    let mut reader = ImageReader::with_format(Cursor::new(bytes.as_ref()), kind);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| MediaError::Invalid(format!("the image cannot be read: {e}")))?;
    let thumbnail = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let mut png = Cursor::new(Vec::new());
    thumbnail
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|e| MediaError::Invalid(format!("the thumbnail cannot be drawn: {e}")))?;
    Ok((kind, png.into_inner()))
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
        _ => ("image/jpeg", "jpg"),
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

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([7, 193, 96]));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn upload(bytes: Vec<u8>) -> Upload {
        Upload {
            filename: "a.png".into(),
            bytes: bytes.into(),
        }
    }

    #[test]
    fn an_image_gets_a_small_thumbnail_and_anything_else_a_reason() {
        let (kind, thumbnail) = check(&upload(png(800, 400))).unwrap();
        assert_eq!(kind, ImageFormat::Png);
        let thumb = image::load_from_memory(&thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (240, 120));
        assert!(check(&upload(Vec::new())).is_err());
        assert!(check(&upload(b"GIF89a....".to_vec())).is_err());
        assert!(
            check(&upload(vec![0xFF, 0xD8, 0xFF, 0x00])).is_err(),
            "truncated"
        );
        assert!(check(&upload(vec![0; MAX_IMAGE_BYTES + 1])).is_err());
    }
}
