//! The OpenID Connect provider, end to end: the real server, the stand-in WeChat, a follower's browser
//! with a cookie jar, and as the relying party the `openidconnect` crate, which discovers the provider,
//! verifies every ID token against the JWKS and checks nonce and `at_hash` itself.

use openidconnect::core::{CoreClient, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::{
    AdditionalClaims, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, IssuerUrl, RedirectUrl, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use wxportal::oidc::clients::{NewClient, Registered};

use crate::helpers::{Browser, PUBLIC_URL, TestApp, wxportal_cli};
use crate::mock::MockWeChat;

mod demo;
mod errors;
mod flow;
mod manage;
mod sessions;

/// Where the test app receives its codes (never fetched: the test reads the redirect).
pub(super) const REDIRECT: &str = "http://127.0.0.1/rp/callback";
pub(super) const LOGOUT_REDIRECT: &str = "http://127.0.0.1/rp/signed-out";

/// The relying party as the library types it once discovered.
pub(super) type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The claims WeChat adds, as an app reads them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WeChatClaims {
    pub wechat_unionid: Option<String>,
}
impl AdditionalClaims for WeChatClaims {}

pub(super) type Userinfo = UserInfoClaims<WeChatClaims, CoreGenderClaim>;

/// An HTTP failure as the library wants it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct HttpError(String);

/// The library's HTTP client: requests to the issuer (`http://portal.test`) go to the server under
/// test, as a reverse proxy would send them.
#[derive(Clone)]
pub(super) struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            client: app.client.clone(),
        }
    }

    pub fn call(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, HttpError>> + 'static {
        let this = self.clone();
        async move {
            let url = request
                .uri()
                .to_string()
                .replacen(PUBLIC_URL, &this.base, 1);
            let mut builder = this.client.request(request.method().clone(), url);
            for (name, value) in request.headers() {
                builder = builder.header(name, value);
            }
            let response = builder
                .body(request.body().clone())
                .send()
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut out = HttpResponse::new(response.status().as_u16().to_string().into_bytes());
            *out.status_mut() = response.status();
            *out.headers_mut() = response.headers().clone();
            *out.body_mut() = response
                .bytes()
                .await
                .map_err(|e| HttpError(e.to_string()))?
                .to_vec();
            Ok(out)
        }
    }
}

/// The server with web authorization against the stand-in WeChat.
pub(super) async fn provider() -> (TestApp, MockWeChat) {
    crate::portal::portal().await
}

/// Registers an app on `app`'s database.
pub(super) async fn register(app: &TestApp, public: bool, consent: bool) -> Registered {
    wxportal::oidc::clients::create(
        &app.store,
        NewClient {
            name: "积分商城 <Shop>".into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![LOGOUT_REDIRECT.into()],
            public,
            consent,
            subject_openid: false,
        },
    )
    .await
    .unwrap()
}

/// The relying party for `registered`, configured from discovery alone.
pub(super) async fn relying_party(http: &Http, registered: &Registered) -> Rp {
    let call = |r| http.call(r);
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(PUBLIC_URL.into()).unwrap(), &call)
            .await
            .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client_id.clone()),
        registered.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

/// A URL on the issuer as a path the browser loads.
pub(super) fn local(url: &str) -> String {
    url.strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{url} is not on the issuer"))
        .to_owned()
}

/// Follows the sign-in from an authorization URL as a phone would, playing WeChat's consent as
/// `openid`, until the follower is sent somewhere off the portal: that URL. Stops at a page (200).
pub(super) async fn follow(
    browser: &Browser,
    mock: &MockWeChat,
    openid: &str,
    start: &str,
) -> Result<reqwest::Url, crate::helpers::Page> {
    let mut page = browser.get(&local(start)).await;
    for _ in 0..10 {
        let Some(location) = page.location.clone() else {
            return Err(page);
        };
        if location.starts_with('/') {
            if let Some(query) = location.strip_prefix("/auth/login") {
                let state = browser.start_login(query).await;
                let scope = if location.contains("snsapi_base") {
                    "snsapi_base"
                } else {
                    "snsapi_userinfo"
                };
                page = browser
                    .callback(&mock.issue_code(openid, scope), &state)
                    .await;
            } else {
                page = browser.get(&location).await;
            }
            continue;
        }
        return Ok(reqwest::Url::parse(&location).unwrap());
    }
    panic!("too many redirects");
}

/// A query parameter of `url`.
pub(super) fn param(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET path` on the server, as JSON.
pub(super) async fn get_json(app: &TestApp, path: &str) -> serde_json::Value {
    app.client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The server's rows of a table, for "nothing stored" checks.
pub(super) async fn count(app: &TestApp, table: &str) -> i64 {
    app.rows(table).await
}

/// An app, its library client and the HTTP it speaks through.
pub(super) struct Setup {
    pub app: TestApp,
    pub mock: MockWeChat,
    pub http: Http,
    pub registered: Registered,
    pub rp: Rp,
}

pub(super) async fn setup(public: bool, consent: bool) -> Setup {
    let (app, mock) = provider().await;
    let http = Http::new(&app);
    let registered = register(&app, public, consent).await;
    let rp = relying_party(&http, &registered).await;
    Setup {
        app,
        mock,
        http,
        registered,
        rp,
    }
}
