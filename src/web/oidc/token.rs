//! `/oidc/token`, `/oidc/revoke` and `/oidc/userinfo`: what an app calls with the code it was given.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{JsonError, Params, no_store};
use crate::oidc::{CodeGrant, ErrorCode, OidcError, secret_matches};
use crate::store::Client;
use crate::web::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/oidc/token", post(token))
        .route("/oidc/revoke", post(revoke))
        .route("/oidc/userinfo", get(userinfo).post(userinfo))
}

fn invalid_request(description: &str) -> JsonError {
    OidcError::new(ErrorCode::InvalidRequest, description).into()
}

/// The client a token or revocation request comes from (RFC 6749 §2.3): HTTP Basic
/// (`client_secret_basic`), the secret in the body (`client_secret_post`), or a public client's id
/// alone. Every failure is `invalid_client`, and the secret is compared in constant time.
async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, JsonError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let refuse = |description: &str| JsonError {
        error: OidcError::new(ErrorCode::InvalidClient, description),
        basic: basic.is_some(),
    };
    let (client_id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some(credentials), None) => {
            // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined.
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| refuse("the Basic credentials are not base64"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| refuse("the Basic credentials have no colon"))?;
            let unescape = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map(|c| c.into_owned())
                    .map_err(|_| refuse("the Basic credentials are not form-encoded"))
            };
            let id = unescape(id)?;
            if let Some(body_id) = params.get("client_id")
                && body_id != id
            {
                return Err(refuse("client_id differs from the Basic credentials"));
            }
            (id, Some(unescape(secret)?))
        }
        (None, secret) => (
            params
                .get("client_id")
                .ok_or_else(|| refuse("the client did not say who it is"))?
                .to_owned(),
            secret.map(str::to_owned),
        ),
    };
    let client = app
        .store
        .client(&client_id)
        .await
        .map_err(|e| JsonError::from(crate::oidc::ProviderError::from(e)))?
        .ok_or_else(|| refuse("unknown client"))?;
    match (&client.secret_hash, secret) {
        (Some(stored), Some(secret)) if secret_matches(&secret, stored) => Ok(client),
        (Some(_), Some(_)) => Err(refuse("wrong client secret")),
        (Some(_), None) => Err(refuse("this client must authenticate with its secret")),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(refuse("this client is public: it has no secret")),
    }
}

async fn token(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match token_grant(&app, &headers, &body).await {
        Ok(tokens) => (StatusCode::OK, no_store(), Json(tokens)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn token_grant(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<crate::oidc::TokenResponse, JsonError> {
    let params = Params::parse(body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| invalid_request("grant_type is missing"))?;
    let client = authenticate(app, headers, &params).await?;
    match grant_type {
        "authorization_code" => {
            let code = params
                .get("code")
                .ok_or_else(|| invalid_request("code is missing"))?;
            if client.is_public() && params.get("code_verifier").is_none() {
                return Err(invalid_request(
                    "a public client must send its code_verifier",
                ));
            }
            let request = CodeGrant {
                code,
                redirect_uri: params.get("redirect_uri"),
                code_verifier: params.get("code_verifier"),
            };
            Ok(app.oidc.exchange_code(&client, request).await?)
        }
        "refresh_token" => {
            let refresh = params
                .get("refresh_token")
                .ok_or_else(|| invalid_request("refresh_token is missing"))?;
            Ok(app
                .oidc
                .refresh(&client, refresh, params.get("scope"))
                .await?)
        }
        other => Err(OidcError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {other:?} is not supported (authorization_code, refresh_token)"),
        )
        .into()),
    }
}

/// RFC 7009: 200 whether or not the token was known; only the client's own tokens are revoked.
async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let params = Params::parse(&body)?;
        let client = authenticate(&app, &headers, &params).await?;
        let token = params
            .get("token")
            .ok_or_else(|| invalid_request("token is missing"))?;
        app.oidc.revoke(&client, token).await?;
        Ok::<_, JsonError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// OIDC Core §5.3: the claims of the access token's sign-in, for a Bearer token (RFC 6750 §2.1).
async fn userinfo(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(access_token) = bearer else {
        // RFC 6750 §3.1: a request with no credentials gets the challenge and no error code.
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"wxportal\"")],
            no_store(),
        )
            .into_response();
    };
    let result = async {
        let grant = app.oidc.access(access_token).await?;
        Ok::<_, JsonError>(app.oidc.userinfo(&grant).await?)
    }
    .await;
    match result {
        Ok(claims) => (StatusCode::OK, no_store(), Json(claims)).into_response(),
        Err(e) => e.into_response(),
    }
}
