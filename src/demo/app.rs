//! `/_sim/app`: a sample app of the account's own that signs followers in with WeChat through wxportal's
//! OpenID Connect provider, as any relying party would: a state, a nonce and a PKCE verifier kept in its
//! own cookie, the code exchanged at `/oidc/token` with its secret, the ID token checked against
//! `/oidc/jwks` (signature, issuer, audience, nonce, expiry), the claims read from `/oidc/userinfo`, and
//! sign-out through `/oidc/logout`. It speaks to the provider over HTTP, like an app on another server.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower_cookies::Cookies;
use tower_sessions::cookie::{Cookie, SameSite};

use crate::oidc::clients::Registered;
use crate::oidc::keys::verify;
use crate::oidc::{hash, random_token};
use crate::store::{Client, Store, StoreError, Subject};
use crate::time::unix_now;
use crate::web::error::{AppError, ErrorPage};
use crate::web::portal::oauth::found;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// The sample app's client id.
pub const CLIENT_ID: &str = "demo-app";
const FLOW_COOKIE: &str = "wxportal_demo_rp_flow";
const SIGNED_IN_COOKIE: &str = "wxportal_demo_rp";

/// The sample app's registration: its secret is new at every start.
#[derive(Clone)]
pub struct SampleApp {
    secret: String,
}

impl SampleApp {
    pub fn new() -> Self {
        Self {
            secret: random_token(),
        }
    }

    /// Registers (or refreshes) the sample client on the demo's database.
    pub async fn register(
        &self,
        store: &Store,
        public_url: &str,
    ) -> Result<Registered, StoreError> {
        let client = Client {
            client_id: CLIENT_ID.to_owned(),
            name: "示例应用 · Sample app".to_owned(),
            secret_hash: Some(hash(&self.secret)),
            redirect_uris: vec![format!("{public_url}/_sim/app/callback")],
            post_logout_redirect_uris: vec![format!("{public_url}/_sim/app")],
            consent: true,
            subject: Subject::Pairwise,
            created_at: unix_now(),
            secret_rotated_at: None,
        };
        store.put_client(&client).await?;
        Ok(crate::oidc::clients::describe(client))
    }
}

impl Default for SampleApp {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/app", get(home))
        .route("/_sim/app/login", get(login))
        .route("/_sim/app/callback", get(callback))
        .route("/_sim/app/logout", get(logout))
}

/// What the app remembers between sending the follower off and their return.
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
}

/// What the app keeps once the follower is signed in.
#[derive(Serialize, Deserialize)]
struct SignedIn {
    id_token: String,
    claims: Value,
    userinfo: Value,
}

fn put(app: &AppState, cookies: &Cookies, name: &'static str, value: &impl Serialize) {
    let mut cookie = Cookie::new(
        name,
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default()),
    );
    cookie.set_path("/_sim/app");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookies.signed(&app.keys.cookie).add(cookie);
}

fn take<T: for<'de> Deserialize<'de>>(
    app: &AppState,
    cookies: &Cookies,
    name: &'static str,
) -> Option<T> {
    cookies
        .signed(&app.keys.cookie)
        .get(name)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c.value()).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
}

fn forget(cookies: &Cookies, name: &'static str) {
    let mut cookie = Cookie::new(name, "");
    cookie.set_path("/_sim/app");
    cookie.set_max_age(time::Duration::ZERO);
    cookies.add(cookie);
}

#[derive(Template)]
#[template(path = "demo/app.html")]
struct HomeTemplate {
    layout: Layout,
    issuer: String,
    signed_in: Option<(String, String, Option<String>, String, String)>,
}

async fn home(State(app): State<AppState>, cookies: Cookies) -> Result<Response, AppError> {
    let signed_in = take::<SignedIn>(&app, &cookies, SIGNED_IN_COOKIE).map(|s| {
        let name = s.userinfo["name"]
            .as_str()
            .unwrap_or("（未分享昵称 · no nickname shared）")
            .to_owned();
        let picture = s.userinfo["picture"].as_str().map(str::to_owned);
        (
            s.claims["sub"].as_str().unwrap_or_default().to_owned(),
            name,
            picture,
            serde_json::to_string_pretty(&s.claims).unwrap_or_default(),
            serde_json::to_string_pretty(&s.userinfo).unwrap_or_default(),
        )
    });
    render(&HomeTemplate {
        layout: Layout::new(&app, false),
        issuer: app.oidc.issuer.clone(),
        signed_in,
    })
}

/// Sends the follower to the provider with a fresh state, nonce and PKCE challenge.
async fn login(State(app): State<AppState>, cookies: Cookies) -> Response {
    let flow = Flow {
        state: random_token(),
        nonce: random_token(),
        verifier: random_token(),
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(flow.verifier.as_bytes()));
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        (
            "redirect_uri",
            &format!("{}/_sim/app/callback", app.oidc.issuer),
        ),
        ("scope", "openid profile"),
        ("state", &flow.state),
        ("nonce", &flow.nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    put(&app, &cookies, FLOW_COOKIE, &flow);
    found(&format!("/oidc/authorize?{query}"))
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn failed(en: &str) -> AppError {
    ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "示例应用：登录失败",
        "示例应用没有完成登录。",
        en,
    )
    .retry("/_sim/app")
    .into()
}

/// The provider's answer: checked and exchanged as a careful app does.
async fn callback(
    State(app): State<AppState>,
    Extension(sample): Extension<SampleApp>,
    cookies: Cookies,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let flow: Flow =
        take(&app, &cookies, FLOW_COOKIE).ok_or_else(|| failed("no sign-in was started here"))?;
    forget(&cookies, FLOW_COOKIE);
    if query.state.as_deref() != Some(flow.state.as_str()) {
        return Err(failed("the state does not match the one sent"));
    }
    if query.iss.as_deref() != Some(app.oidc.issuer.as_str()) {
        return Err(failed("the answer names another issuer"));
    }
    if let Some(error) = query.error {
        return Err(failed(&format!(
            "{error}: {}",
            query.error_description.unwrap_or_default()
        )));
    }
    let code = query.code.ok_or_else(|| failed("no code"))?;
    let provider = format!("http://{}", app.local_addr);
    let redirect_uri = format!("{}/_sim/app/callback", app.oidc.issuer);
    let tokens = json_of(
        app.http
            .post(format!("{provider}/oidc/token"))
            .basic_auth(CLIENT_ID, Some(&sample.secret))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect_uri),
                    ("code_verifier", &flow.verifier),
                ])
                .unwrap_or_default(),
            ),
    )
    .await?;
    let (Some(id_token), Some(access_token)) =
        (tokens["id_token"].as_str(), tokens["access_token"].as_str())
    else {
        return Err(failed(&format!("the token endpoint refused: {tokens}")));
    };
    let jwks = json_of(app.http.get(format!("{provider}/oidc/jwks"))).await?;
    let claims = verify(id_token, &jwks).map_err(|e| failed(&format!("the ID token: {e}")))?;
    let fresh = claims["exp"].as_i64().is_some_and(|exp| exp > unix_now());
    if claims["iss"] != app.oidc.issuer.as_str()
        || claims["aud"] != CLIENT_ID
        || claims["nonce"] != flow.nonce.as_str()
        || !fresh
    {
        return Err(failed("the ID token is not for this sign-in"));
    }
    let userinfo = json_of(
        app.http
            .get(format!("{provider}/oidc/userinfo"))
            .bearer_auth(access_token),
    )
    .await?;
    put(
        &app,
        &cookies,
        SIGNED_IN_COOKIE,
        &SignedIn {
            id_token: id_token.to_owned(),
            claims,
            userinfo,
        },
    );
    Ok(found("/_sim/app"))
}

/// The JSON a call to the provider answers.
async fn json_of(request: reqwest::RequestBuilder) -> Result<Value, AppError> {
    let call_failed = |e: reqwest::Error| failed(&format!("the provider did not answer: {e}"));
    request
        .send()
        .await
        .map_err(call_failed)?
        .json()
        .await
        .map_err(call_failed)
}

/// Signs out of the app, then of the portal through the provider's logout.
async fn logout(State(app): State<AppState>, cookies: Cookies) -> Response {
    let hint = take::<SignedIn>(&app, &cookies, SIGNED_IN_COOKIE).map(|s| s.id_token);
    forget(&cookies, SIGNED_IN_COOKIE);
    match hint {
        Some(hint) => {
            let query = serde_urlencoded::to_string([
                ("id_token_hint", hint.as_str()),
                (
                    "post_logout_redirect_uri",
                    &format!("{}/_sim/app", app.oidc.issuer),
                ),
            ])
            .unwrap_or_default();
            found(&format!("/oidc/logout?{query}"))
        }
        None => found("/_sim/app"),
    }
}
