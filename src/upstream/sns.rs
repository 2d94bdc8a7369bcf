//! The three `sns` calls of web authorization (docs/wechat.md §6.3–6.5), typed.

use serde::Deserialize;

#[cfg(test)]
use super::parse;
use super::{ApiError, Upstream};
use crate::config::Secret;

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
    pub(crate) fn is_snapshot_user(&self) -> bool {
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

/// The `sns` API of one account.
#[derive(Debug, Clone)]
pub struct SnsClient {
    upstream: Upstream,
    appid: String,
    secret: Option<Secret>,
}

impl SnsClient {
    pub fn new(upstream: Upstream, appid: &str, secret: Option<Secret>) -> Self {
        Self {
            upstream,
            appid: appid.to_owned(),
            secret,
        }
    }

    /// Exchanges an authorization code for the follower's tokens and openid (§6.3).
    pub(crate) async fn exchange_code(&self, code: &str) -> Result<Grant, ApiError> {
        let secret = self.secret.as_ref().ok_or(ApiError::NoSecret)?;
        self.upstream
            .get(
                "/sns/oauth2/access_token",
                &[
                    ("appid", &self.appid),
                    ("secret", secret.expose()),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await
            .map(|(grant, _)| grant)
    }

    /// Renews an expired access token with the refresh token (§6.4).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Grant, ApiError> {
        self.upstream
            .get(
                "/sns/oauth2/refresh_token",
                &[
                    ("appid", &self.appid),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await
            .map(|(grant, _)| grant)
    }

    /// The follower's profile, for an `snsapi_userinfo` token (§6.5).
    pub async fn userinfo(&self, access_token: &str, openid: &str) -> Result<UserInfo, ApiError> {
        let (mut info, raw): (UserInfo, String) = self
            .upstream
            .get(
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
                matches!(parse::<Grant>(body), Err(ApiError::Garbage(_))),
                "{body}"
            );
        }
    }
}
