//! QR codes with a scene (docs/wechat.md §10): created through `qrcode/create` with a string scene and
//! drawn here from the URL WeChat returns, never fetched from a third party. Scans are attributed by the
//! webhook ([`crate::store::Scan`]).

use qrcode::QrCode as Matrix;
use qrcode::render::svg;

use crate::store::{NewQrCode, Once, QrCode, Store, StoreError};
use crate::time::unix_now;
use crate::upstream::ApiError;
use crate::upstream::account::Account;

/// The longest a temporary code lives (30 days).
pub const MAX_TEMPORARY_SECS: i64 = 30 * 86_400;
/// Permanent codes an account may create.
pub const PERMANENT_LIMIT: i64 = 100_000;
pub const MAX_NAME_CHARS: usize = 60;
/// The PNG's side in pixels: 8.5 cm at 300 dpi, for print.
const PNG_SIDE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The request was refused before any call: the sentence says why.
    #[error("{0}")]
    Invalid(String),
    #[error("WeChat refused to create the code: {0}")]
    WeChat(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A scene nobody can guess or collide with: `q` and 16 hex digits.
fn new_scene() -> String {
    let bytes: [u8; 8] = rand::random();
    format!("q{}", hex::encode(bytes))
}

/// Creates a code named `name`: temporary for `expires_in` seconds, or permanent when `None`.
pub async fn create(
    store: &Store,
    account: &Account,
    name: &str,
    expires_in: Option<i64>,
    created_by: &str,
    once: Option<&Once>,
) -> Result<QrCode, QrError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(QrError::Invalid(format!(
            "a code needs a name of 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    match expires_in {
        Some(secs) if !(60..=MAX_TEMPORARY_SECS).contains(&secs) => {
            return Err(QrError::Invalid(format!(
                "a temporary code lives 60 to {MAX_TEMPORARY_SECS} seconds (30 days)"
            )));
        }
        None if store.permanent_qr_codes().await? >= PERMANENT_LIMIT => {
            return Err(QrError::Invalid(format!(
                "the account has its {PERMANENT_LIMIT} permanent codes; create a temporary one"
            )));
        }
        _ => {}
    }
    let scene = new_scene();
    let ticket = account.create_qr(&scene, expires_in).await?;
    let expires_at = expires_in.map(|asked| unix_now() + ticket.expire_seconds.unwrap_or(asked));
    let id = store
        .add_qr_code(
            &NewQrCode {
                name: name.to_owned(),
                scene,
                permanent: expires_in.is_none(),
                ticket: ticket.ticket,
                url: ticket.url,
                expires_at,
                created_by: created_by.to_owned(),
            },
            once,
        )
        .await?;
    tracing::info!(code = id, created_by, "QR code created");
    store.qr_code(id).await?.ok_or(QrError::Invalid(
        "the code vanished as it was stored".into(),
    ))
}

/// A code as the CLI and the HTTP API show it.
pub fn to_json(code: &QrCode) -> serde_json::Value {
    serde_json::json!({
        "id": code.id,
        "name": code.name,
        "scene": code.scene,
        "ticket": code.ticket,
        "url": code.url,
        "permanent": code.permanent,
        "expires_at": code.expires_at,
        "created_at": code.created_at,
        "created_by": code.created_by,
        "scans": code.scans,
        "new_followers": code.new_followers,
        "unfollowed": code.unfollowed,
    })
}

fn matrix(url: &str) -> Matrix {
    // WeChat's URLs are short; anything that would not fit a code is a bug upstream, drawn as a URL of
    // the same length would be (the library picks the version).
    Matrix::new(url.as_bytes()).unwrap_or_else(|_| {
        Matrix::new(b"https://weixin.qq.com/").expect("a short URL always fits")
    })
}

/// The code as SVG, black on white with the standard quiet zone.
pub fn svg(url: &str) -> String {
    matrix(url)
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build()
}

/// The quiet zone around a code, in modules (ISO/IEC 18004).
const QUIET_ZONE: usize = 4;

/// The code as a greyscale PNG at least [`PNG_SIDE`] pixels square, for print: black modules on white,
/// each a whole number of pixels, with the standard quiet zone.
pub fn png(url: &str) -> Vec<u8> {
    let code = matrix(url);
    let modules = code.width() + 2 * QUIET_ZONE;
    let scale = (PNG_SIDE as usize).div_ceil(modules);
    let side = modules * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % code.width() + QUIET_ZONE, i / code.width() + QUIET_ZONE);
            for row in y * scale..(y + 1) * scale {
                pixels[row * side + x * scale..row * side + (x + 1) * scale].fill(0);
            }
        }
    }
    crate::media::encode_png(side as u32, side as u32, png::ColorType::Grayscale, &pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_distinct_and_within_wechats_limit() {
        let (a, b) = (new_scene(), new_scene());
        assert_ne!(a, b);
        assert!(a.len() <= 64 && a.starts_with('q'));
    }

    #[test]
    fn the_png_is_a_print_sized_png_and_the_svg_an_svg() {
        let png = png("http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI");
        assert_eq!(&png[1..4], b"PNG");
        let decoded = image::load_from_memory(&png).unwrap().to_luma8();
        assert!(decoded.width() >= PNG_SIDE && decoded.width() == decoded.height());
        assert_eq!(decoded.get_pixel(0, 0).0, [255], "a white quiet zone");
        let mut grid = rqrr::PreparedImage::prepare(decoded);
        let grids = grid.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(
            grids[0].decode().unwrap().1,
            "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"
        );
        assert!(svg("http://weixin.qq.com/q/x").starts_with("<?xml"));
    }
}
