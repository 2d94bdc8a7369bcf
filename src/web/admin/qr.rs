//! `/admin/qr`: QR codes with a scene: create one (temporary or permanent), see what each brought
//! (scans, new followers, those who left since), and download it as SVG or PNG for print.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::frame::{Frame, Nav, not_found, see_other};
use crate::qr::{self, MAX_NAME_CHARS, PERMANENT_LIMIT, QrError};
use crate::store::QrCode;
use crate::time::{beijing_time, unix_now};
use crate::web::error::{AppError, ErrorPage};
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// One code as the page shows it.
struct CodeRow {
    code: QrCode,
    expiry: String,
    expired: bool,
    created: String,
}

impl From<QrCode> for CodeRow {
    fn from(code: QrCode) -> Self {
        let (expiry, expired) = match code.expires_at {
            None => ("永久 · permanent".to_owned(), false),
            Some(at) => (
                format!("{} 过期 · expires", beijing_time(at)),
                at <= unix_now(),
            ),
        };
        Self {
            created: beijing_time(code.created_at),
            code,
            expiry,
            expired,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/qr.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    codes: Vec<CodeRow>,
    permanent: usize,
    permanent_limit: i64,
    max_name: usize,
}

pub async fn list(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let codes = app.store.qr_codes().await?;
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        permanent: codes.iter().filter(|c| c.permanent).count(),
        codes: codes.into_iter().map(CodeRow::from).collect(),
        permanent_limit: PERMANENT_LIMIT,
        max_name: MAX_NAME_CHARS,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    name: String,
    /// `temporary` or `permanent`.
    #[serde(default)]
    kind: String,
    /// A temporary code's lifetime in days (1 to 30).
    #[serde(default)]
    days: String,
}

fn refused(status: StatusCode, zh: &str, en: &str) -> AppError {
    ErrorPage::new(status, "未创建 · Not created", zh, en)
        .retry("/admin/qr")
        .into()
}

pub async fn create(
    State(app): State<AppState>,
    frame: Frame,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let expires_in = match form.kind.as_str() {
        "permanent" => None,
        "temporary" => match form.days.trim().parse::<i64>() {
            Ok(days @ 1..=30) => Some(days * 86_400),
            _ => {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "临时二维码有效期为 1 到 30 天。",
                    "A temporary code lives 1 to 30 days.",
                ));
            }
        },
        _ => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "请选择临时或永久。",
                "Choose temporary or permanent.",
            ));
        }
    };
    let created = qr::create(
        &app.store,
        &app.account,
        &form.name,
        expires_in,
        &frame.nav.admin,
        None,
    )
    .await;
    match created {
        Ok(code) => Ok(see_other(&format!("/admin/qr#code-{}", code.id))),
        Err(QrError::Invalid(why)) => {
            Err(refused(StatusCode::BAD_REQUEST, "二维码的设置不对。", &why))
        }
        Err(QrError::WeChat(e)) => Err(refused(
            StatusCode::BAD_GATEWAY,
            "微信没有创建二维码。",
            &format!("WeChat refused: {e}"),
        )),
        Err(QrError::Store(e)) => Err(e.into()),
    }
}

/// The format a code is downloaded in.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    Svg,
    Png,
}

/// `GET /admin/qr/{id}/{format}`: the code drawn here from its URL, as a download.
pub async fn image(
    State(app): State<AppState>,
    Path((id, format)): Path<(i64, Format)>,
) -> Result<Response, AppError> {
    let code = app
        .store
        .qr_code(id)
        .await?
        .ok_or_else(|| not_found("二维码"))?;
    let (content_type, extension, body) = match format {
        Format::Svg => ("image/svg+xml", "svg", qr::svg(&code.url).into_bytes()),
        Format::Png => ("image/png", "png", qr::png(&code.url)),
    };
    let disposition = format!(
        "inline; filename=\"qr-{}-{}.{extension}\"",
        code.id, code.scene
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
