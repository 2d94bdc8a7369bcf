//! wxportal as an OpenID Connect provider (OIDC Core 1.0, with RFC 9700's advice): the account's own
//! apps sign followers in with WeChat through the portal. This module is the provider without HTTP:
//! clients and their secrets, codes, PKCE, grants and their tokens, ID tokens and claims. `web::oidc`
//! speaks it over HTTP.
//!
//! Access and refresh tokens are opaque random strings stored hashed, not JWTs: userinfo reads the
//! database anyway (the profile), and an opaque token is revoked the moment a grant is (a reused code,
//! a replayed refresh token, `/oidc/revoke`), where a JWT would stay good until it expires.

pub mod clients;
pub mod keys;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{
    Client, Code, Grant, NewToken, Redeemed, Rotated, Store, StoreError, Subject, TokenKind, User,
};
use crate::time::unix_now;
use keys::{KeyError, Keyring};

/// A code is redeemed within this many seconds (RFC 9700 §4.2: short-lived).
pub const CODE_LIFETIME: i64 = 60;
/// Access tokens and ID tokens.
pub const ACCESS_TOKEN_LIFETIME: i64 = 3600;
pub const ID_TOKEN_LIFETIME: i64 = 3600;
/// A grant's refresh tokens work this long after the sign-in; each exchange rotates the token.
pub const REFRESH_LIFETIME: i64 = 30 * 86_400;

/// The scopes this provider knows. `openid` is required; `profile` adds name and picture (and makes
/// the portal ask WeChat for `snsapi_userinfo`); others are ignored (RFC 6749 §3.3).
pub const SCOPES: [&str; 2] = ["openid", "profile"];

/// The claims userinfo can answer with: OIDC Core §5.1 names, and WeChat's own with a `wechat_` prefix.
pub const CLAIMS: [&str; 8] = [
    "sub",
    "name",
    "nickname",
    "picture",
    "gender",
    "locale",
    "updated_at",
    "wechat_unionid",
];

/// The errors of OAuth 2.0 (RFC 6749 §4.1.2.1, §5.2), OIDC Core §3.1.2.6 and RFC 6750 §3.1, by their
/// wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::ServerError => "server_error",
        }
    }
}

/// A refusal in the protocol's terms: its code and a sentence for the app's developer.
#[derive(Debug, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OidcError {
    pub code: ErrorCode,
    pub description: String,
}

impl OidcError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }
}

/// A failure of the provider: a refusal, or our database or keys.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Refused(#[from] OidcError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

fn refused(code: ErrorCode, description: &str) -> ProviderError {
    ProviderError::Refused(OidcError::new(code, description))
}

/// A random token of 256 bits, base64url.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a code, token or secret is stored: hex SHA-256 (each is 256 random bits: a slow hash would add
/// nothing but cost at the token endpoint).
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one whose hash is stored, compared in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    bool::from(hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()))
}

/// Whether a PKCE `code_challenge` is well formed: S256 yields 43 base64url characters (RFC 7636 §4.2).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` answers the `S256` `challenge` (RFC 7636 §4.1, §4.6), in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// The requested scope reduced to the ones known here, in a fixed order, or the refusal.
pub fn known_scope(requested: &str) -> Result<String, OidcError> {
    let asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    if !asked.contains(&"openid") {
        return Err(OidcError::new(
            ErrorCode::InvalidScope,
            "the scope must include openid",
        ));
    }
    Ok(SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" "))
}

/// Whether `scope` asks for the profile (so the follower's WeChat nickname and picture are needed).
pub fn wants_profile(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "profile")
}

/// Whether every scope of `asked` is in `granted`.
pub fn covers(granted: &str, asked: &str) -> bool {
    asked.split(' ').all(|s| granted.split(' ').any(|g| g == s))
}

/// The ID token's `at_hash`: the left half of the access token's SHA-256, base64url (OIDC Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

/// What a successful token request returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

/// The provider: issuer, keys, and the secret pairwise subjects are derived with.
#[derive(Debug)]
pub struct Provider {
    store: Store,
    pub issuer: String,
    pub keyring: Keyring,
    pairwise_key: [u8; 32],
}

/// An authorization request that passed every check, as the code will carry it.
#[derive(Debug, Clone)]
pub struct Approved<'a> {
    pub client: &'a Client,
    pub openid: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub auth_time: i64,
}

/// A token request's `authorization_code` grant.
#[derive(Debug, Clone, Copy)]
pub struct CodeGrant<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

impl Provider {
    /// The provider for `issuer` (the public URL), loading or making its first key and pairwise secret.
    pub async fn load(store: Store, issuer: &str) -> Result<Self, ProviderError> {
        let salt = store
            .setting_or_insert("oidc_pairwise_secret", || {
                let bytes: [u8; 32] = rand::random();
                hex::encode(bytes)
            })
            .await?;
        let pairwise_key = Sha256::new()
            .chain_update(b"wxportal oidc pairwise subject\0")
            .chain_update(salt.as_bytes())
            .finalize()
            .into();
        Ok(Self {
            keyring: Keyring::load(store.clone()).await?,
            store,
            issuer: issuer.trim_end_matches('/').to_owned(),
            pairwise_key,
        })
    }

    /// The `sub` of `openid` for `client`: its OpenID, or a pairwise identifier (HMAC-SHA256 of the
    /// client id and the OpenID under a secret kept in the database: stable, and different per app).
    pub fn subject(&self, client_id: &str, subject: Subject, openid: &str) -> String {
        match subject {
            Subject::Openid => openid.to_owned(),
            Subject::Pairwise => {
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.pairwise_key)
                    .expect("HMAC takes a key of any length");
                mac.update(client_id.as_bytes());
                mac.update(b"\0");
                mac.update(openid.as_bytes());
                URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..24])
            }
        }
    }

    /// Issues the code for an approved request: the only thing an authorization writes.
    pub async fn issue_code(&self, approved: &Approved<'_>) -> Result<String, ProviderError> {
        let code = random_token();
        let now = unix_now();
        self.store
            .add_code(&Code {
                code_hash: hash(&code),
                client_id: approved.client.client_id.clone(),
                openid: approved.openid.to_owned(),
                redirect_uri: approved.redirect_uri.to_owned(),
                scope: approved.scope.to_owned(),
                nonce: approved.nonce.map(str::to_owned),
                code_challenge: approved.code_challenge.map(str::to_owned),
                auth_time: approved.auth_time,
                created_at: now,
                expires_at: now + CODE_LIFETIME,
                redeemed_at: None,
                grant_id: None,
            })
            .await?;
        Ok(code)
    }

    /// Redeems a code for tokens (RFC 6749 §4.1.3 with RFC 7636 §4.6): the code must be this client's,
    /// for this redirect URI, unexpired, unredeemed, and answered by its PKCE verifier.
    pub async fn exchange_code(
        &self,
        client: &Client,
        request: CodeGrant<'_>,
    ) -> Result<TokenResponse, ProviderError> {
        let invalid = |why: &str| refused(ErrorCode::InvalidGrant, why);
        let code_hash = hash(request.code);
        let Some(code) = self.store.code(&code_hash).await? else {
            return Err(invalid("the code is not known"));
        };
        if code.client_id != client.client_id {
            return Err(invalid("the code was issued to another client"));
        }
        if request.redirect_uri != Some(code.redirect_uri.as_str()) {
            return Err(invalid(
                "redirect_uri differs from the authorization request's",
            ));
        }
        match (&code.code_challenge, request.code_verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
            (Some(_), Some(_)) => return Err(invalid("the code_verifier does not match")),
            (Some(_), None) => return Err(invalid("code_verifier is required for this code")),
            // A verifier for a code issued without a challenge: a downgrade (RFC 9700 §2.1.1).
            (None, Some(_)) => {
                return Err(invalid("this code was issued without a code_challenge"));
            }
            (None, None) => {}
        }
        let now = unix_now();
        let grant = Grant {
            id: random_token(),
            client_id: client.client_id.clone(),
            openid: code.openid.clone(),
            scope: code.scope.clone(),
            auth_time: code.auth_time,
            created_at: now,
            expires_at: now + REFRESH_LIFETIME,
            revoked_at: None,
        };
        let (access, refresh) = (random_token(), random_token());
        let redeemed = self
            .store
            .redeem_code(
                &code_hash,
                &grant,
                NewToken {
                    hash: &hash(&access),
                    expires_at: now + ACCESS_TOKEN_LIFETIME,
                },
                NewToken {
                    hash: &hash(&refresh),
                    expires_at: grant.expires_at,
                },
            )
            .await?;
        match redeemed {
            Redeemed::Issued => {}
            Redeemed::Refused(Some(revoked)) => {
                tracing::warn!(
                    client = %client.client_id,
                    grant = %&revoked[..8],
                    "a code was redeemed twice: what it issued first is revoked"
                );
                return Err(invalid("the code has already been used"));
            }
            Redeemed::Refused(None) => return Err(invalid("the code has expired")),
        }
        self.tokens(client, &grant, code.nonce.as_deref(), access, refresh)
            .await
    }

    /// Exchanges a refresh token for new tokens, rotating it (RFC 9700 §4.14.2): an old one coming back
    /// revokes the grant. `scope` may narrow what is asked, never widen it.
    pub async fn refresh(
        &self,
        client: &Client,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, ProviderError> {
        let invalid = |why: &str| refused(ErrorCode::InvalidGrant, why);
        let token_hash = hash(refresh_token);
        let found = self.store.token_grant(&token_hash).await?;
        let Some(found) = found.filter(|t| t.kind == TokenKind::Refresh) else {
            return Err(invalid("the refresh token is not known"));
        };
        if found.grant.client_id != client.client_id {
            // Another app's token: refused, and left alone (its owner may still use it).
            return Err(invalid("the refresh token was issued to another client"));
        }
        let now = unix_now();
        if found.grant.revoked_at.is_some() {
            return Err(invalid("the refresh token has been revoked"));
        }
        if found.expires_at <= now {
            return Err(invalid("the refresh token has expired"));
        }
        let mut grant = found.grant;
        if let Some(asked) = scope.filter(|s| !s.trim().is_empty()) {
            let asked = known_scope(asked)?;
            if !covers(&grant.scope, &asked) {
                return Err(refused(
                    ErrorCode::InvalidScope,
                    "the scope asked for is wider than the sign-in granted",
                ));
            }
            grant.scope = asked;
        }
        let (access, refresh) = (random_token(), random_token());
        let rotated = self
            .store
            .rotate_refresh_token(
                &token_hash,
                &grant.id,
                NewToken {
                    hash: &hash(&access),
                    expires_at: (now + ACCESS_TOKEN_LIFETIME).min(grant.expires_at),
                },
                NewToken {
                    hash: &hash(&refresh),
                    expires_at: grant.expires_at,
                },
            )
            .await?;
        if rotated == Rotated::Replayed {
            tracing::warn!(
                client = %client.client_id,
                "a spent refresh token came back: its grant is revoked"
            );
            return Err(invalid("the refresh token has already been used"));
        }
        self.tokens(client, &grant, None, access, refresh).await
    }

    async fn tokens(
        &self,
        client: &Client,
        grant: &Grant,
        nonce: Option<&str>,
        access_token: String,
        refresh_token: String,
    ) -> Result<TokenResponse, ProviderError> {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": self.subject(&client.client_id, client.subject, &grant.openid),
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "auth_time": grant.auth_time,
            "at_hash": at_hash(&access_token),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let id_token = self.keyring.signer().await?.sign(&claims);
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_LIFETIME,
            refresh_token,
            id_token,
            scope: grant.scope.clone(),
        })
    }

    /// The grant an access token belongs to, if the token is live (RFC 6750 §3.1 `invalid_token`
    /// otherwise).
    pub async fn access(&self, access_token: &str) -> Result<Grant, ProviderError> {
        let found = self.store.token_grant(&hash(access_token)).await?;
        let now = unix_now();
        match found {
            Some(t)
                if t.kind == TokenKind::Access
                    && t.used_at.is_none()
                    && t.expires_at > now
                    && t.grant.revoked_at.is_none() =>
            {
                Ok(t.grant)
            }
            _ => Err(refused(
                ErrorCode::InvalidToken,
                "the access token is not valid (unknown, expired or revoked)",
            )),
        }
    }

    /// The userinfo claims of `grant` (OIDC Core §5.3.2): `sub`, `wechat_unionid` when WeChat gave one,
    /// and with `profile` the name and picture the follower shared.
    pub async fn userinfo(&self, grant: &Grant) -> Result<Value, ProviderError> {
        let client = self
            .store
            .client(&grant.client_id)
            .await?
            .ok_or_else(|| refused(ErrorCode::InvalidToken, "the client no longer exists"))?;
        let user = self.store.user(&grant.openid).await?;
        Ok(claims_of(
            self.subject(&client.client_id, client.subject, &grant.openid),
            user.as_ref(),
            &grant.scope,
        ))
    }

    /// Revokes `token` if it is `client`'s (RFC 7009 §2.1): a refresh token revokes its grant (and so its
    /// access tokens), an access token itself. Anything else is ignored, as the RFC says.
    pub async fn revoke(&self, client: &Client, token: &str) -> Result<(), ProviderError> {
        let token_hash = hash(token);
        let Some(found) = self.store.token_grant(&token_hash).await? else {
            return Ok(());
        };
        if found.grant.client_id != client.client_id {
            return Ok(());
        }
        match found.kind {
            TokenKind::Refresh => self.store.revoke_grant(&found.grant.id).await?,
            TokenKind::Access => self.store.revoke_access_token(&token_hash).await?,
        }
        Ok(())
    }
}

/// The claims a follower's row gives for `scope`.
pub fn claims_of(sub: String, user: Option<&User>, scope: &str) -> Value {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(sub));
    if let Some(unionid) = user.and_then(|u| u.unionid.as_deref()) {
        claims.insert("wechat_unionid".into(), json!(unionid));
    }
    if wants_profile(scope)
        && let Some(user) = user
        && let Some(nickname) = &user.nickname
    {
        claims.insert("name".into(), json!(nickname));
        claims.insert("nickname".into(), json!(nickname));
        if let Some(picture) = user.headimgurl.as_deref().filter(|p| !p.is_empty()) {
            claims.insert("picture".into(), json!(picture));
        }
        // WeChat's sex: 1 male, 2 female, 0 not said (OIDC's gender is free text beyond these).
        match user.sex {
            Some(1) => claims.insert("gender".into(), json!("male")),
            Some(2) => claims.insert("gender".into(), json!("female")),
            _ => None,
        };
        claims.insert("locale".into(), json!("zh-CN"));
        if let Some(at) = user.last_authorized_at {
            claims.insert("updated_at".into(), json!(at));
        }
    }
    Value::Object(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
        assert!(!valid_challenge("plain-challenge"));
    }

    #[test]
    fn scopes_need_openid_and_keep_only_known_ones() {
        assert_eq!(
            known_scope("profile openid email").unwrap(),
            "openid profile"
        );
        assert_eq!(known_scope("openid").unwrap(), "openid");
        assert_eq!(
            known_scope("profile").unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert!(covers("openid profile", "openid"));
        assert!(!covers("openid", "openid profile"));
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256() {
        // OIDC Core's example access token and its at_hash (§A.3 uses RS256's SHA-256 too).
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn secrets_match_only_their_hash() {
        let stored = hash("s3cret");
        assert!(secret_matches("s3cret", &stored));
        assert!(!secret_matches("s3cret ", &stored));
    }
}
