//! A stand-in for `api.weixin.qq.com`: the web-authorization calls ([`sns`]) and the account's `cgi-bin`
//! calls ([`account`]), over real HTTP with WeChat's rules — single-use codes that live 5 minutes, tokens
//! that expire, `text/plain` JSON and the documented error codes (docs/wechat.md §6, §7).
//!
//! One implementation serves two masters. `wxportal demo` mounts it under `/_sim/api` and shows what it
//! receives in the follower chat. The black-box tests run it on its own port and use what the demo
//! ignores: call counts, the tokens each call carried, scripted faults, delays and forced expiry.

pub mod account;
pub mod followers;
pub mod material;
pub mod sns;
pub mod templates;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::time::unix_now;

/// A code lives 5 minutes and works once (docs/wechat.md §6.2).
const CODE_LIFETIME: i64 = 300;
/// Tokens and tickets live 2 hours unless a test says otherwise; refresh tokens 30 days.
const TOKEN_LIFETIME: i64 = 7200;
const REFRESH_LIFETIME: i64 = 30 * 86_400;
/// Past this many codes or tokens, the expired ones are forgotten: memory stays bounded under load.
const TIDY_PAST: usize = 10_000;
/// The logs kept for tests (tokens used, messages sent) keep this many entries.
const LOG_LEN: usize = 10_000;

/// An answer a test scripts for the next call to a path, instead of the normal one.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `{"errcode": n, …}`.
    Errcode(i64),
    /// An HTTP status with no body.
    Status(u16),
    /// A 200 whose body is not JSON.
    Garbage,
    /// The normal answer, this much later.
    Delay(Duration),
}

/// A follower as WeChat knows them: what `sns/userinfo` and `cgi-bin/user/info` answer, and the
/// UnionID a code exchange reveals (if any).
#[derive(Debug, Clone)]
pub struct Follower {
    pub unionid: Option<String>,
    /// `sns/userinfo`'s answer, without `openid`.
    pub profile: Value,
    /// `cgi-bin/user/info`'s answer, without `openid`.
    pub info: Value,
}

/// Who the OpenIDs are: `None` for an OpenID this account has never seen (errcode 40003).
pub(crate) type Directory = Arc<dyn Fn(&str) -> Option<Follower> + Send + Sync>;

/// Called with each customer-service or template message WeChat accepts: `(touser, message, msgid)`, the
/// msgid for a template message.
pub(crate) type Delivery = Arc<dyn Fn(&str, &Value, Option<u64>) + Send + Sync>;

#[derive(Debug, Clone)]
struct Grant {
    openid: String,
    scope: String,
    snapshot: bool,
    expires_at: i64,
    /// Set by a test: the token answers 42001 whatever the clock says.
    expired: bool,
}

#[derive(Debug, Clone)]
struct Code {
    openid: String,
    scope: String,
    snapshot: bool,
    issued_at: i64,
    used: bool,
}

/// What the account side holds: its tokens and tickets, the menu, what it was sent.
#[derive(Debug, Default)]
struct AccountState {
    /// Valid account tokens and tickets, with their expiry (unix seconds).
    tokens: HashMap<String, i64>,
    /// The token `stable_token` hands out until it nears expiry.
    stable: Option<String>,
    /// Lifetime of new tokens and tickets, if a test set one.
    lifetime: Option<i64>,
    /// Every token fetch waits this long (to overlap concurrent needs).
    token_delay: Duration,
    menu: Option<Value>,
    sent: VecDeque<Value>,
    /// The QR codes created: (scene, the request as received).
    codes: VecDeque<(String, Value)>,
    /// Images uploaded as permanent material, the newest last: (media_id, bytes).
    images: VecDeque<(String, axum::body::Bytes)>,
    /// Template messages accepted, in order.
    templates_sent: VecDeque<Value>,
    /// The last template message's msgid.
    template_msgid: u64,
    /// The token each call carried, by path.
    used: VecDeque<(String, String)>,
}

struct State {
    appid: String,
    secret: Option<String>,
    directory: Directory,
    delivery: Mutex<Option<Delivery>>,
    calls: Mutex<HashMap<String, usize>>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    codes: Mutex<HashMap<String, Code>>,
    access: Mutex<HashMap<String, Grant>>,
    refresh: Mutex<HashMap<String, Grant>>,
    /// Each successful code exchange waits this long (to overlap concurrent callbacks).
    exchange_delay: Mutex<Duration>,
    account: Mutex<AccountState>,
    roster: Mutex<followers::Roster>,
}

/// The running stand-in; cheap to clone, every clone the same WeChat.
#[derive(Clone)]
pub struct FakeWeChat {
    state: Arc<State>,
}

impl std::fmt::Debug for FakeWeChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeWeChat")
            .field("appid", &self.state.appid)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

impl FakeWeChat {
    /// WeChat for the account `appid`, whose AppSecret is `secret` (no token can be had without one).
    pub fn new(appid: &str, secret: Option<&str>, directory: Directory) -> Self {
        Self {
            state: Arc::new(State {
                appid: appid.to_owned(),
                secret: secret.map(str::to_owned),
                directory,
                delivery: Mutex::default(),
                calls: Mutex::default(),
                faults: Mutex::default(),
                codes: Mutex::default(),
                access: Mutex::default(),
                refresh: Mutex::default(),
                exchange_delay: Mutex::default(),
                account: Mutex::default(),
                roster: Mutex::default(),
            }),
        }
    }

    /// The API's routes, relative to its root (`/sns/…`, `/cgi-bin/…`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/sns/oauth2/access_token", get(sns::access_token))
            .route("/sns/oauth2/refresh_token", get(sns::refresh_token))
            .route("/sns/userinfo", get(sns::userinfo))
            .route("/sns/auth", get(sns::check_token))
            .route("/cgi-bin/stable_token", post(account::stable_token))
            .route("/cgi-bin/token", get(account::classic_token))
            .route("/cgi-bin/ticket/getticket", get(account::ticket))
            .route("/cgi-bin/menu/create", post(account::menu_create))
            .route(
                "/cgi-bin/get_current_selfmenu_info",
                get(account::menu_current),
            )
            .route("/cgi-bin/menu/delete", get(account::menu_delete))
            .route("/cgi-bin/message/custom/send", post(account::custom_send))
            .route("/cgi-bin/user/info", get(account::user_info))
            .route("/cgi-bin/user/get", get(followers::list))
            .route("/cgi-bin/user/info/batchget", post(followers::batch_info))
            .route("/cgi-bin/tags/get", get(followers::tags))
            .route(
                "/cgi-bin/tags/members/batchtagging",
                post(followers::batch_tag),
            )
            .route("/cgi-bin/qrcode/create", post(account::qr_create))
            .route(
                "/cgi-bin/template/get_all_private_template",
                get(templates::list),
            )
            .route("/cgi-bin/message/template/send", post(templates::send))
            .route(
                "/cgi-bin/material/add_material",
                post(material::add).layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024)),
            )
            .with_state(self.clone())
    }

    /// Serves the API on its own loopback port; returns its base URL.
    pub async fn serve(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(base)
    }

    /// Where accepted customer-service messages go (the demo's chat).
    pub(crate) fn deliver_to(&self, delivery: Delivery) {
        *lock(&self.state.delivery) = Some(delivery);
    }

    /// A code the consent page hands to the callback after `openid` consented to `scope`; a Moments
    /// snapshot visitor's exchange says `is_snapshotuser: 1`.
    pub fn issue_code(&self, openid: &str, scope: &str, snapshot: bool) -> String {
        let code = random_token("code");
        let now = unix_now();
        let mut codes = lock(&self.state.codes);
        if codes.len() > TIDY_PAST {
            codes.retain(|_, c| !c.used && now - c.issued_at <= CODE_LIFETIME);
        }
        codes.insert(
            code.clone(),
            Code {
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                snapshot,
                issued_at: now,
                used: false,
            },
        );
        code
    }

    /// The next call to `path` gets `fault` instead of its normal answer (faults queue up).
    pub fn script(&self, path: &str, fault: Fault) {
        lock(&self.state.faults)
            .entry(path.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// How many calls reached `path`.
    pub fn calls(&self, path: &str) -> usize {
        lock(&self.state.calls).get(path).copied().unwrap_or(0)
    }

    /// The access tokens that calls to `path` carried, in order.
    pub fn tokens_used(&self, path: &str) -> Vec<String> {
        lock(&self.state.account)
            .used
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The customer-service messages received, in order.
    pub fn sent(&self) -> Vec<Value> {
        lock(&self.state.account).sent.iter().cloned().collect()
    }

    /// The `qrcode/create` requests received, in order, as (scene, request).
    pub fn qr_requests(&self) -> Vec<(String, Value)> {
        lock(&self.state.account).codes.iter().cloned().collect()
    }

    /// An image uploaded as permanent material (the last few are kept).
    pub fn image(&self, media_id: &str) -> Option<axum::body::Bytes> {
        lock(&self.state.account)
            .images
            .iter()
            .find(|(id, _)| id == media_id)
            .map(|(_, bytes)| bytes.clone())
    }

    /// The media_ids of the images uploaded, oldest first (the last few).
    pub fn images(&self) -> Vec<String> {
        lock(&self.state.account)
            .images
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The template messages accepted, in order.
    pub fn templates_sent(&self) -> Vec<Value> {
        lock(&self.state.account)
            .templates_sent
            .iter()
            .cloned()
            .collect()
    }

    /// The menu as last created, if any.
    pub fn menu(&self) -> Option<Value> {
        lock(&self.state.account).menu.clone()
    }

    pub fn set_menu(&self, menu: Option<Value>) {
        lock(&self.state.account).menu = menu;
    }

    pub fn set_exchange_delay(&self, delay: Duration) {
        *lock(&self.state.exchange_delay) = delay;
    }

    /// Every web-authorization access token issued so far answers 42001 (expired).
    pub fn expire_access_tokens(&self) {
        for grant in lock(&self.state.access).values_mut() {
            grant.expired = true;
        }
    }

    /// Every refresh token issued so far answers 42002 (expired).
    pub fn kill_refresh_tokens(&self) {
        for grant in lock(&self.state.refresh).values_mut() {
            grant.expired = true;
        }
    }

    /// New account tokens and tickets live this long.
    pub fn set_token_lifetime(&self, secs: i64) {
        lock(&self.state.account).lifetime = Some(secs);
    }

    /// Every account-token fetch waits this long before answering.
    pub fn set_token_delay(&self, delay: Duration) {
        lock(&self.state.account).token_delay = delay;
    }

    /// Invalidates every account token issued so far (as a fetch elsewhere would): they get 40001.
    pub fn revoke_account_tokens(&self) {
        let mut account = lock(&self.state.account);
        account.tokens.clear();
        account.stable = None;
    }

    /// Records the call; a scripted fault for it is answered here (a delay is waited out, then the
    /// call goes on).
    async fn begin(&self, path: &str) -> Option<Response> {
        *lock(&self.state.calls).entry(path.to_owned()).or_default() += 1;
        let fault = lock(&self.state.faults)
            .get_mut(path)
            .and_then(VecDeque::pop_front);
        match fault? {
            Fault::Errcode(code) => Some(error(code)),
            Fault::Status(status) => Some(
                StatusCode::from_u16(status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response(),
            ),
            Fault::Garbage => Some(text("<html>upstream said what?</html>".into())),
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }

    fn secret_ok(&self, secret: Option<&str>) -> bool {
        self.state.secret.is_some() && secret == self.state.secret.as_deref()
    }
}

/// WeChat's answers are JSON served as `text/plain`.
fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn answer(value: &Value) -> Response {
    text(value.to_string())
}

fn error(errcode: i64) -> Response {
    answer(&json!({ "errcode": errcode, "errmsg": crate::upstream::meaning(errcode) }))
}

fn ok() -> Response {
    error(0)
}
