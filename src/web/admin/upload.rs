//! Forms that may carry an image: posted as `multipart/form-data` (with a file field `image`) or as a
//! plain form. The guard checks the CSRF token of both ([`csrf_of_multipart`]); handlers take
//! [`Submitted`]. Also the thumbnails of uploaded images.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::frame::not_found;
use crate::media::{self, Upload};
use crate::web::error::AppError;
use crate::web::state::AppState;

/// Whether a request's body is `multipart/form-data`.
pub(super) fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// The `csrf` field of a buffered multipart body (empty if it has none or does not parse).
pub(super) async fn csrf_of_multipart(content_type: &str, body: &axum::body::Bytes) -> String {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return String::new();
    };
    let chunk = Ok::<_, std::convert::Infallible>(body.clone());
    let mut form = multer::Multipart::new(futures_util::stream::once(async { chunk }), boundary);
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("csrf") {
            return field.text().await.unwrap_or_default();
        }
    }
    String::new()
}

/// A posted form and the image it carried, if any (an empty file input is no image).
pub(crate) struct Submitted<T> {
    pub form: T,
    pub image: Option<Upload>,
}

fn unreadable(e: impl ToString) -> AppError {
    AppError::bad_request("form", e)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Submitted<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        if !is_multipart(&request) {
            let axum::Form(form) = axum::Form::<T>::from_request(request, state)
                .await
                .map_err(unreadable)?;
            return Ok(Self { form, image: None });
        }
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(unreadable)?;
        let mut pairs = Vec::new();
        let mut image = None;
        while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "image" {
                let filename = field.file_name().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.map_err(unreadable)?;
                if !bytes.is_empty() {
                    image = Some(Upload { filename, bytes });
                }
            } else {
                pairs.push((name, field.text().await.map_err(unreadable)?));
            }
        }
        let encoded = serde_urlencoded::to_string(&pairs).map_err(unreadable)?;
        let form = serde_urlencoded::from_str(&encoded).map_err(unreadable)?;
        Ok(Self { form, image })
    }
}

/// `GET /admin/media/{media_id}/thumbnail`: the thumbnail drawn at upload.
pub async fn thumbnail(
    State(app): State<AppState>,
    Path(media_id): Path<String>,
) -> Result<Response, AppError> {
    let media = app
        .store
        .media(&media_id)
        .await?
        .ok_or_else(|| not_found("图片"))?;
    Ok((
        [(header::CONTENT_TYPE, "image/png")],
        media::thumbnail_png(&media),
    )
        .into_response())
}
