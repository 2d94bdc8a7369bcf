//! `GET /jssdk/config?url=…`: what a page of ours needs for `wx.config` (docs/wechat.md §7): the AppID, a
//! timestamp, a nonce and the signature over the jsapi_ticket, for page URLs on our own host only.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::RngExt;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::time::unix_now;
use crate::upstream::token::Kind;
use crate::web::error::{AppError, JsonError};
use crate::web::state::AppState;

pub fn router(app: &AppState) -> Router<AppState> {
    Router::new().route(
        "/jssdk/config",
        get(config).route_layer(axum::middleware::from_fn_with_state(
            (
                std::sync::Arc::clone(&app.limits),
                crate::web::limits::Route::Jssdk,
            ),
            crate::web::limits::limit,
        )),
    )
}

/// `wx.config`'s signature: SHA-1 over the four fields in this order, the URL without its fragment.
pub fn signature(ticket: &str, nonce: &str, timestamp: i64, url: &str) -> String {
    let plain = format!("jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(plain.as_bytes()))
}

#[derive(Debug, Deserialize)]
struct ConfigQuery {
    url: Option<String>,
}

/// The answer, named as `wx.config` takes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JsConfig {
    app_id: String,
    timestamp: i64,
    nonce_str: String,
    signature: String,
}

/// The page URL to sign, as the page sees it (`location.href` up to `#`), if it is one of ours.
fn own_page(url: &str, config: &crate::config::Config) -> Option<String> {
    let page = url.split('#').next().unwrap_or_default();
    config.is_own_origin(page).then(|| page.to_owned())
}

async fn config(
    State(app): State<AppState>,
    Query(q): Query<ConfigQuery>,
) -> Result<Response, JsonError> {
    let Some(url) = q.url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(AppError::bad_request("url", "the url parameter is missing").json());
    };
    let Some(page) = own_page(url, &app.config) else {
        return Err(AppError::bad_request(
            "url",
            "the url is not a page of this site (WXPORTAL_PUBLIC_URL)",
        )
        .json());
    };
    let ticket = app
        .account
        .credentials
        .get(Kind::JsapiTicket)
        .await
        .map_err(|source| AppError::Upstream {
            what: "the JS-SDK ticket is unavailable",
            source,
        })?;
    let nonce: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let timestamp = unix_now();
    let body = JsConfig {
        app_id: app.config.appid.clone(),
        timestamp,
        signature: signature(&ticket.value, &nonce, timestamp, &page),
        nonce_str: nonce,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_of_our_own_origin_are_signed_without_their_fragment() {
        let config = crate::config::Config::from_lookup(|k| match k {
            "WXPORTAL_TOKEN" => Some("token123".into()),
            "WXPORTAL_APPID" => Some("wx1234567890abcdef".into()),
            "WXPORTAL_PUBLIC_URL" => Some("https://example.com".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            own_page("https://example.com/?a=1#share", &config).as_deref(),
            Some("https://example.com/?a=1")
        );
        assert_eq!(
            own_page("https://example.com:443/me", &config).as_deref(),
            Some("https://example.com:443/me")
        );
        for other in [
            "https://evil.com/",
            "https://example.com.evil.com/",
            "https://example.com:443.evil.com/",
            "http://example.com/",
            "https://example.com:8443/",
            "https://user@example.com/",
            "javascript:alert(1)",
            "/relative",
        ] {
            assert_eq!(own_page(other, &config), None, "{other}");
        }
    }
}
