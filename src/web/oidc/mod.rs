//! The OpenID Connect provider over HTTP (`crate::oidc` is the provider itself):
//!
//! - `/.well-known/openid-configuration` and `/oidc/jwks`: what an app's library reads to configure itself;
//! - `/oidc/authorize`, `/oidc/resume`, `/oidc/consent` (authorize.rs): a follower's sign-in, inside the
//!   portal's session, through WeChat only when the portal does not know them yet;
//! - `/oidc/token`, `/oidc/userinfo`, `/oidc/revoke` (token.rs): the app's server (or a public app) calls
//!   these with JSON answers and no cookies, so they sit outside the pages' session layer;
//! - `/oidc/logout` (logout.rs): RP-initiated logout.

mod authorize;
mod logout;
mod token;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};

use crate::oidc::{CLAIMS, ErrorCode, OidcError, ProviderError, SCOPES};
use crate::web::error::AppError;
use crate::web::state::AppState;

/// Where the portal sends a follower back after signing them in for an app.
pub(crate) const RESUME: &str = "/oidc/resume";

/// The pages a follower's browser visits: under the session layer.
pub fn pages(app: &AppState) -> Router<AppState> {
    authorize::router(app).merge(logout::router())
}

/// What apps call from their servers or, for discovery, keys, tokens and userinfo, from a browser:
/// no session, CORS open to any origin (no cookie is ever read here).
pub fn api() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oidc/jwks", get(jwks))
        .merge(token::router())
        .layer(cors)
}

/// The discovery document (OpenID Connect Discovery 1.0 §3).
async fn discovery(State(app): State<AppState>) -> Response {
    let issuer = &app.oidc.issuer;
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oidc/authorize"),
        "token_endpoint": format!("{issuer}/oidc/token"),
        "userinfo_endpoint": format!("{issuer}/oidc/userinfo"),
        "jwks_uri": format!("{issuer}/oidc/jwks"),
        "revocation_endpoint": format!("{issuer}/oidc/revoke"),
        "end_session_endpoint": format!("{issuer}/oidc/logout"),
        "scopes_supported": SCOPES,
        "claims_supported": CLAIMS,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": [crate::oidc::keys::ALG],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(document),
    )
        .into_response()
}

/// The public keys ID tokens are signed with (every instance's, read from the database).
async fn jwks(State(app): State<AppState>) -> Result<Response, AppError> {
    let keys = app.oidc.keyring.jwks().await.map_err(|e| {
        tracing::error!(error = %e, "reading the signing keys failed");
        AppError::Internal("signing keys unavailable")
    })?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(keys)).into_response())
}

/// An error at the token, revocation or userinfo endpoint, as RFC 6749 §5.2 writes it.
pub(crate) struct JsonError {
    error: OidcError,
    /// The client authenticated with HTTP Basic (a failure then says so in `WWW-Authenticate`).
    basic: bool,
}

impl From<OidcError> for JsonError {
    fn from(error: OidcError) -> Self {
        Self {
            error,
            basic: false,
        }
    }
}

impl From<ProviderError> for JsonError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Refused(error) => error.into(),
            other => {
                tracing::error!(error = %other, "the OpenID Connect provider failed");
                OidcError::new(
                    ErrorCode::ServerError,
                    "the server could not complete the request",
                )
                .into()
            }
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let status = match self.error.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        tracing::info!(error = self.error.code.as_str(), description = %self.error.description, "OpenID Connect request refused");
        let mut response = (
            status,
            no_store(),
            Json(json!({
                "error": self.error.code.as_str(),
                "error_description": self.error.description,
            })),
        )
            .into_response();
        let challenge = match self.error.code {
            ErrorCode::InvalidClient if self.basic => Some("Basic realm=\"wxportal\"".to_owned()),
            ErrorCode::InvalidToken => Some(format!(
                "Bearer realm=\"wxportal\", error=\"invalid_token\", error_description=\"{}\"",
                self.error.description.replace('"', "'")
            )),
            _ => None,
        };
        crate::web::error::set_challenge(&mut response, challenge);
        response
    }
}

/// Lets a page's forms lead to `origin` (an app's redirect after the form's answer: browsers check
/// `form-action` on redirects too).
pub(crate) fn allow_forms_to(response: &mut Response, origin: &str) {
    if let Ok(csp) = HeaderValue::from_str(&crate::web::content_security_policy(origin)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
}

/// Token responses are never cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// Parameters as sent, refusing any sent twice (RFC 6749 §3.1, §3.2).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Result<Self, OidcError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(encoded).map_err(|_| {
            OidcError::new(
                ErrorCode::InvalidRequest,
                "the parameters are not form-encoded",
            )
        })?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(OidcError::new(
                    ErrorCode::InvalidRequest,
                    format!("{name} is given more than once"),
                ));
            }
        }
        Ok(Self(pairs))
    }

    /// A parameter's value; an empty one counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}
