//! The three `sns` calls of web authorization (WECHAT.md §6.3–6.5), typed.
//!
//! WeChat answers HTTP 200 with `text/plain` JSON, errors included (`{"errcode":N,"errmsg":"…"}`), so
//! the body is parsed whatever the Content-Type and an `errcode` is checked before anything else.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::Secret;

/// How long one call may take: well inside a page load, and twice that with the one retry of `-1`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before retrying a `-1` (system busy).
const BUSY_RETRY_AFTER: Duration = Duration::from_millis(300);
/// WeChat's answers are small; a larger body is not from WeChat.
const MAX_ANSWER: usize = 64 * 1024;

/// The one outbound HTTP client: timeouts that fit in a page load, redirects off, no proxy surprises.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wxportal/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with a static configuration")
}

/// What `/sns/oauth2/access_token` and `/sns/oauth2/refresh_token` return.
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub openid: String,
    pub scope: String,
    #[serde(default)]
    pub unionid: Option<String>,
    /// 1 when the page was opened from a Moments snapshot: the openid is virtual.
    #[serde(default)]
    pub is_snapshotuser: Option<i64>,
}

impl Grant {
    pub fn is_snapshot_user(&self) -> bool {
        self.is_snapshotuser == Some(1)
    }
}

/// What `/sns/userinfo` returns. Since 2021 most fields may be placeholders or empty.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: String,
    #[serde(default)]
    pub sex: i64,
    #[serde(default)]
    pub province: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub headimgurl: String,
    #[serde(default)]
    pub privilege: Vec<String>,
    #[serde(default)]
    pub unionid: Option<String>,
    /// The answer as received, kept for the operator.
    #[serde(skip)]
    pub raw: String,
}

/// Why a call to WeChat failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SnsError {
    /// WeChat answered with an error code.
    #[error("WeChat error {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    /// WeChat answered with an HTTP status other than 200.
    #[error("WeChat answered HTTP {0}")]
    Status(u16),
    #[error("WeChat did not answer in time")]
    Timeout,
    #[error("WeChat could not be reached: {0}")]
    Unreachable(String),
    /// A 200 whose body is not the JSON WeChat documents.
    #[error("WeChat's answer was not understood: {0}")]
    Garbage(String),
    /// `WXPORTAL_APPSECRET` is not set, so no code can be exchanged.
    #[error("WXPORTAL_APPSECRET is not set")]
    NoSecret,
}

impl SnsError {
    /// The WeChat error code, when there is one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
}

/// The `sns` API of one account.
#[derive(Debug, Clone)]
pub struct SnsClient {
    http: reqwest::Client,
    api_url: String,
    appid: String,
    secret: Option<Secret>,
}

impl SnsClient {
    pub fn new(http: reqwest::Client, api_url: &str, appid: &str, secret: Option<Secret>) -> Self {
        Self {
            http,
            api_url: api_url.to_owned(),
            appid: appid.to_owned(),
            secret,
        }
    }

    /// Exchanges an authorization code for the follower's tokens and openid (§6.3).
    pub async fn exchange_code(&self, code: &str) -> Result<Grant, SnsError> {
        let secret = self.secret.as_ref().ok_or(SnsError::NoSecret)?;
        self.get(
            "/sns/oauth2/access_token",
            &[
                ("appid", &self.appid),
                ("secret", secret.expose()),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
    }

    /// Renews an expired access token with the refresh token (§6.4).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Grant, SnsError> {
        self.get(
            "/sns/oauth2/refresh_token",
            &[
                ("appid", &self.appid),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// The follower's profile, for an `snsapi_userinfo` token (§6.5).
    pub async fn userinfo(&self, access_token: &str, openid: &str) -> Result<UserInfo, SnsError> {
        let (mut info, raw): (UserInfo, String) = self
            .get_raw(
                "/sns/userinfo",
                &[
                    ("access_token", access_token),
                    ("openid", openid),
                    ("lang", "zh_CN"),
                ],
            )
            .await?;
        info.raw = raw;
        Ok(info)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, SnsError> {
        self.get_raw(path, query).await.map(|(value, _)| value)
    }

    /// One call, retried once after a pause when WeChat says `-1` (system busy).
    async fn get_raw<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, String), SnsError> {
        match self.call(path, query).await {
            Err(SnsError::Api { errcode: -1, .. }) => {
                tracing::info!(path, "WeChat busy (-1); retrying once");
                tokio::time::sleep(BUSY_RETRY_AFTER).await;
                self.call(path, query).await
            }
            other => other,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, String), SnsError> {
        let url = format!("{}{path}", self.api_url);
        // Errors are stripped of their URL: the query holds the AppSecret or a token.
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                SnsError::Timeout
            } else {
                SnsError::Unreachable(e.without_url().to_string())
            }
        };
        let mut response = self
            .http
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(failed)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(SnsError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(SnsError::Garbage(format!("more than {MAX_ANSWER} bytes")));
            }
        }
        let text = String::from_utf8(body)
            .map_err(|_| SnsError::Garbage("the body is not UTF-8".into()))?;
        parse(&text).map(|value| (value, text))
    }
}

/// Reads WeChat's JSON: an error object when `errcode` is present and non-zero, else `T`.
fn parse<T: DeserializeOwned>(text: &str) -> Result<T, SnsError> {
    #[derive(Deserialize)]
    struct MaybeError {
        #[serde(default)]
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let head: MaybeError = serde_json::from_str(text)
        .map_err(|e| SnsError::Garbage(format!("not a JSON object ({e})")))?;
    if head.errcode != 0 {
        return Err(SnsError::Api {
            errcode: head.errcode,
            errmsg: head.errmsg,
        });
    }
    serde_json::from_str(text).map_err(|e| SnsError::Garbage(format!("unexpected shape ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_errcode_wins_over_the_expected_shape() {
        let err = parse::<Grant>(r#"{"errcode":40163,"errmsg":"code been used"}"#).unwrap_err();
        assert_eq!(err.errcode(), Some(40163));
    }

    #[test]
    fn a_grant_parses_with_and_without_the_optional_fields() {
        let g: Grant = parse(r#"{"access_token":"A","expires_in":7200,"refresh_token":"R","openid":"o1","scope":"snsapi_base"}"#).unwrap();
        assert!(!g.is_snapshot_user());
        assert_eq!(g.unionid, None);
        let g: Grant = parse(r#"{"access_token":"A","expires_in":7200,"refresh_token":"R","openid":"o1","scope":"snsapi_base","is_snapshotuser":1,"unionid":"u"}"#).unwrap();
        assert!(g.is_snapshot_user());
        assert_eq!(g.unionid.as_deref(), Some("u"));
    }

    #[test]
    fn garbage_is_named_not_panicked_on() {
        for body in [
            "",
            "<html>502</html>",
            "[]",
            r#"{"openid":1}"#,
            "{\"errcode\":",
        ] {
            assert!(
                matches!(parse::<Grant>(body), Err(SnsError::Garbage(_))),
                "{body}"
            );
        }
    }
}
