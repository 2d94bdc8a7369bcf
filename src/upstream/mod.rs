//! The typed client of WeChat's HTTP API (`api.weixin.qq.com`).
//!
//! One [`Upstream`] makes every call: a timeout on each, the body read with a size cap, `errcode` checked
//! before anything else (WeChat answers HTTP 200 with `text/plain` JSON, errors included) and mapped to
//! [`ApiError`], `-1` (system busy) retried with backoff. No URL is ever logged or kept in an error: its
//! query holds the AppSecret or a token.
//!
//! - [`sns`]: web authorization's calls, with the follower's own tokens (docs/wechat.md §6).
//! - [`token`]: the account's access_token and jsapi_ticket, shared by every process on one database (§7).
//! - [`account`]: the calls made with the account token (menu, customer-service messages, follower info,
//!   JS-SDK ticket), each refreshing the token once on 40001/42001.
//! - [`menu`]: the custom menu and WeChat's rules for it.

pub mod account;
pub mod menu;
pub mod sns;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// An HTTP client's builder with TLS by rustls with *ring* (every client is built from here: without a
/// crypto provider, building one fails).
pub fn client_builder() -> reqwest::ClientBuilder {
    // Already installed (by another client, or a library) is fine: any provider serves.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// How long one call may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The pauses before retrying a `-1` (system busy): three tries in all.
const BUSY_BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(750)];
/// WeChat's answers are small but for `user/get`'s page of 10,000 OpenIDs (about 320 KB); a larger
/// body is not from WeChat.
const MAX_ANSWER: usize = 1024 * 1024;

/// The one outbound HTTP client: timeouts on every call, redirects off.
pub(crate) fn http_client() -> reqwest::Client {
    client_builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wxportal/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with a static configuration")
}

/// Why a call to WeChat failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// WeChat answered with an error code.
    #[error("WeChat error {errcode} ({}): {errmsg}", meaning(*errcode))]
    Api { errcode: i64, errmsg: String },
    /// WeChat answered with an HTTP status other than 200.
    #[error("WeChat answered HTTP {0}")]
    Status(u16),
    #[error("WeChat did not answer in time")]
    Timeout,
    /// No answer: the connection failed (the error is stripped of its URL, which holds secrets).
    #[error("WeChat could not be reached: {0}")]
    Unreachable(#[source] Arc<reqwest::Error>),
    /// Our own database failed while fetching or sharing a credential: WeChat was not asked.
    #[error("the database failed: {0}")]
    Store(#[source] Arc<StoreError>),
    /// A 200 whose body is not the JSON WeChat documents.
    #[error("WeChat's answer was not understood: {0}")]
    Garbage(String),
    /// `WXPORTAL_APPSECRET` is not set, so no token can be had.
    #[error("WXPORTAL_APPSECRET is not set")]
    NoSecret,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Store(Arc::new(e))
    }
}

impl ApiError {
    /// The WeChat error code, when there is one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// The token was refused as invalid (40001) or expired (42001): a fresh one may succeed.
    pub(crate) fn is_stale_token(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 42001))
    }

    /// Worth trying again later: WeChat was busy, down, slow or unreachable. Everything else (a refused
    /// request, a quota, a configuration mistake) fails the same way until a person acts.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Api { errcode, .. } => *errcode == -1,
            Self::Status(status) => *status >= 500 || *status == 429,
            Self::Timeout | Self::Unreachable(_) | Self::Store(_) => true,
            Self::Garbage(_) | Self::NoSecret => false,
        }
    }
}

/// The official meaning of the error codes the account and web-authorization APIs return.
pub(crate) fn meaning(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system busy, try again",
        0 => "ok",
        40001 => "invalid credential: the access_token is wrong or was replaced",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40016 | 40017 => "invalid number of buttons or button type",
        40018..=40020 => "invalid button name, key or URL length",
        40023..=40027 => "invalid sub-button count, type, name, key or URL length",
        40029 => "invalid code",
        40030 => "invalid refresh_token",
        40054 | 40055 => "invalid button URL domain",
        40125 => "invalid appsecret",
        40163 => "code already used",
        40164 => "the caller's IP is not on the whitelist",
        41001 => "access_token missing",
        41004 => "appsecret missing",
        41008 => "code missing",
        42001 => "access_token expired",
        42002 => "refresh_token expired",
        42003 => "code expired",
        42007 => "the user changed a password: authorize again",
        43004 => "the follower has unsubscribed",
        40032 => "too many OpenIDs in one call",
        45009 => "the API's daily quota is used up",
        45011 => "API called too often",
        45059 => "a follower already has the most tags WeChat allows (20)",
        45159 => "no such follower tag",
        45015 => "reply time limit exceeded: the follower has not messaged in 48 hours",
        45047 => "more than 20 customer-service messages without an answer from the follower",
        46003 => "no menu exists",
        48001 => "API unauthorized for this account or scope",
        50001 => "the user did not authorize this API",
        65400 => "the API is unavailable: a personalised menu is not set up",
        _ => "see WeChat's global error code list",
    }
}

/// A request to WeChat, ready to send.
enum Request<'a> {
    Get,
    PostJson(&'a serde_json::Value),
    /// A file as the multipart field `media` (material uploads).
    Upload(&'a FilePart),
}

/// A file to upload: its name, type and bytes.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub filename: String,
    pub content_type: &'static str,
    pub bytes: axum::body::Bytes,
}

/// An upload may take longer than a call.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes calls to one WeChat API base URL.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    base: String,
}

impl Upstream {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// `GET path?query` → `T`, with the raw answer (kept for the operator where useful).
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, String), ApiError> {
        self.with_backoff(path, query, Request::Get).await
    }

    /// `POST path?query` with a JSON body → `T`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<(T, String), ApiError> {
        self.with_backoff(path, query, Request::PostJson(body))
            .await
    }

    /// Uploads `file` as the multipart field `media`.
    pub async fn post_file<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        file: &FilePart,
    ) -> Result<(T, String), ApiError> {
        self.with_backoff(path, query, Request::Upload(file)).await
    }

    /// One call, tried again after a pause while WeChat says `-1` (system busy).
    async fn with_backoff<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        request: Request<'_>,
    ) -> Result<(T, String), ApiError> {
        let mut pauses = BUSY_BACKOFF.iter();
        loop {
            match self.call(path, query, &request).await {
                Err(ApiError::Api { errcode: -1, .. }) if pauses.len() > 0 => {
                    let pause = *pauses.next().expect("checked non-empty");
                    tracing::info!(
                        path,
                        pause_ms = pause.as_millis() as u64,
                        "WeChat busy (-1); retrying"
                    );
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        request: &Request<'_>,
    ) -> Result<(T, String), ApiError> {
        let url = format!("{}{path}", self.base);
        // Errors are stripped of their URL: the query holds the AppSecret or a token.
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                ApiError::Timeout
            } else {
                ApiError::Unreachable(Arc::new(e.without_url()))
            }
        };
        let builder = match request {
            Request::Get => self.http.get(url),
            // WeChat reads the body as UTF-8 JSON; serde_json keeps CJK as is (no \u escapes).
            Request::PostJson(body) => self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
            Request::Upload(file) => {
                let part = reqwest::multipart::Part::bytes(file.bytes.to_vec())
                    .file_name(file.filename.clone())
                    .mime_str(file.content_type)
                    .map_err(failed)?;
                self.http
                    .post(url)
                    .timeout(UPLOAD_TIMEOUT)
                    .multipart(reqwest::multipart::Form::new().part("media", part))
            }
        };
        let mut response = builder.query(query).send().await.map_err(failed)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ApiError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(ApiError::Garbage(format!("more than {MAX_ANSWER} bytes")));
            }
        }
        let text = String::from_utf8(body)
            .map_err(|_| ApiError::Garbage("the body is not UTF-8".into()))?;
        parse(&text).map(|value| (value, text))
    }
}

/// Reads WeChat's JSON: an error object when `errcode` is present and non-zero, else `T`.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    #[derive(Deserialize)]
    struct MaybeError {
        #[serde(default)]
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let head: MaybeError = serde_json::from_str(text)
        .map_err(|e| ApiError::Garbage(format!("not a JSON object ({e})")))?;
    if head.errcode != 0 {
        return Err(ApiError::Api {
            errcode: head.errcode,
            errmsg: head.errmsg,
        });
    }
    serde_json::from_str(text).map_err(|e| ApiError::Garbage(format!("unexpected shape ({e})")))
}

/// The answer of calls that return nothing but `{"errcode":0,"errmsg":"ok"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Done {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_failure_is_not_called_wechat_being_unreachable() {
        let e = ApiError::from(StoreError::WriterGone);
        assert!(matches!(e, ApiError::Store(_)));
        assert!(e.to_string().starts_with("the database failed"), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the source is kept"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn errors_carry_their_official_meaning() {
        let e = parse::<Done>(r#"{"errcode":45015,"errmsg":"response out of time limit"}"#)
            .unwrap_err();
        assert_eq!(e.errcode(), Some(45015));
        assert!(e.to_string().contains("48 hours"), "{e}");
        assert!(!e.is_transient());
        let busy = parse::<Done>(r#"{"errcode":-1,"errmsg":"system error"}"#).unwrap_err();
        assert!(busy.is_transient());
        assert!(ApiError::Status(502).is_transient());
        assert!(!ApiError::Status(404).is_transient());
        assert!(
            parse::<Done>(r#"{"errcode":42001,"errmsg":"x"}"#)
                .unwrap_err()
                .is_stale_token()
        );
    }

    #[test]
    fn an_ok_errcode_is_success() {
        parse::<Done>(r#"{"errcode":0,"errmsg":"ok"}"#).unwrap();
    }
}
