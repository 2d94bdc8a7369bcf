//! A mock of WeChat's API on loopback (`sns` and the account's `cgi-bin` calls): real codes and tokens,
//! call counting, scripted failures, and a log of every customer-service message received.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const APPSECRET: &str = "0123456789abcdef0123456789abcdef";

/// A scripted answer, used once, instead of the normal one.
#[derive(Debug, Clone)]
pub enum Scripted {
    Errcode(i64),
    Status(u16),
    Garbage,
    /// Answers normally after this long.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Grant {
    openid: String,
    scope: String,
    snapshot: bool,
}

#[derive(Default)]
struct Mock {
    calls: Mutex<Vec<String>>,
    scripted: Mutex<HashMap<String, VecDeque<Scripted>>>,
    codes: Mutex<HashMap<String, (Grant, bool)>>,
    access: Mutex<HashMap<String, (Grant, bool)>>,
    refresh: Mutex<HashMap<String, Grant>>,
    /// Each successful code exchange waits this long (to overlap concurrent callbacks).
    exchange_delay: Mutex<Duration>,
    next_id: Mutex<u64>,
    account: Mutex<AccountState>,
}

/// The account side: its tokens, ticket, menu, and what it was sent.
#[derive(Default)]
struct AccountState {
    /// Valid account tokens and when each expires (unix seconds).
    tokens: HashMap<String, i64>,
    /// The token stable_token hands out until it expires.
    stable: Option<String>,
    /// Lifetime of new tokens and tickets, in seconds (7200 unless set).
    lifetime: Option<i64>,
    /// Every token fetch waits this long (to overlap concurrent needs).
    token_delay: Duration,
    menu: Option<Value>,
    sent: Vec<Value>,
    /// The token each call was made with, by path.
    used: Vec<(String, String)>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The running mock: its base URL and what it has seen.
#[derive(Clone)]
pub struct MockWeChat {
    pub base: String,
    mock: Arc<Mock>,
}

impl MockWeChat {
    pub async fn start() -> Self {
        let mock = Arc::new(Mock::default());
        let app = Router::new()
            .route("/sns/oauth2/access_token", get(access_token))
            .route("/sns/oauth2/refresh_token", get(refresh_token))
            .route("/sns/userinfo", get(userinfo))
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/token", get(classic_token))
            .route("/cgi-bin/ticket/getticket", get(ticket))
            .route("/cgi-bin/menu/create", post(menu_create))
            .route("/cgi-bin/get_current_selfmenu_info", get(menu_current))
            .route("/cgi-bin/menu/delete", get(menu_delete))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/user/info", get(user_info))
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, mock }
    }

    /// A code WeChat would hand to the callback after `openid` consented to `scope`.
    pub fn issue_code(&self, openid: &str, scope: &str) -> String {
        self.issue(openid, scope, false)
    }

    /// A code for a Moments snapshot visitor (`is_snapshotuser: 1`).
    pub fn issue_snapshot_code(&self) -> String {
        self.issue("oSnapshotVirtual", "snsapi_base", true)
    }

    fn issue(&self, openid: &str, scope: &str, snapshot: bool) -> String {
        let code = format!("CODE{}", self.id());
        self.mock.codes.lock().unwrap().insert(
            code.clone(),
            (
                Grant {
                    openid: openid.into(),
                    scope: scope.into(),
                    snapshot,
                },
                false,
            ),
        );
        code
    }

    fn id(&self) -> u64 {
        let mut n = self.mock.next_id.lock().unwrap();
        *n += 1;
        *n
    }

    /// The next call to `path` gets `answer` instead.
    pub fn script(&self, path: &str, answer: Scripted) {
        self.mock
            .scripted
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .push_back(answer);
    }

    pub fn set_exchange_delay(&self, delay: Duration) {
        *self.mock.exchange_delay.lock().unwrap() = delay;
    }

    /// Makes every access token issued so far answer 42001 (expired).
    pub fn expire_access_tokens(&self) {
        for (_, expired) in self.mock.access.lock().unwrap().values_mut() {
            *expired = true;
        }
    }

    /// Forgets every refresh token (they answer 42002 from now on).
    pub fn kill_refresh_tokens(&self) {
        self.mock.refresh.lock().unwrap().clear();
    }

    /// New account tokens and tickets live this long.
    pub fn set_token_lifetime(&self, secs: i64) {
        self.mock.account.lock().unwrap().lifetime = Some(secs);
    }

    /// Every account-token fetch waits this long before answering.
    pub fn set_token_delay(&self, delay: Duration) {
        self.mock.account.lock().unwrap().token_delay = delay;
    }

    /// Invalidates every account token issued so far (as a fetch elsewhere would): they get 40001.
    pub fn revoke_account_tokens(&self) {
        let mut account = self.mock.account.lock().unwrap();
        account.tokens.clear();
        account.stable = None;
    }

    /// The customer-service messages received, in order.
    pub fn sent(&self) -> Vec<Value> {
        self.mock.account.lock().unwrap().sent.clone()
    }

    /// The menu as last created, if any.
    pub fn menu(&self) -> Option<Value> {
        self.mock.account.lock().unwrap().menu.clone()
    }

    pub fn set_menu(&self, menu: Option<Value>) {
        self.mock.account.lock().unwrap().menu = menu;
    }

    /// The access tokens that calls to `path` carried, in order.
    pub fn tokens_used(&self, path: &str) -> Vec<String> {
        let account = self.mock.account.lock().unwrap();
        account
            .used
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// How many calls reached `path`.
    pub fn calls(&self, path: &str) -> usize {
        self.mock
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

fn json(body: String) -> Response {
    // WeChat's Content-Type, even for JSON.
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn error(errcode: i64) -> Response {
    json(format!(
        r#"{{"errcode":{errcode},"errmsg":"mock error {errcode}"}}"#
    ))
}

/// Records the call; returns a scripted answer if one is queued (a delay is waited out here).
async fn begin(mock: &Mock, path: &str) -> Option<Response> {
    mock.calls.lock().unwrap().push(path.to_owned());
    let scripted = mock
        .scripted
        .lock()
        .unwrap()
        .get_mut(path)
        .and_then(VecDeque::pop_front);
    match scripted? {
        Scripted::Errcode(code) => Some(error(code)),
        Scripted::Status(status) => Some(StatusCode::from_u16(status).unwrap().into_response()),
        Scripted::Garbage => Some(json("<html>upstream said what?</html>".into())),
        Scripted::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

fn grant_json(mock: &Mock, grant: &Grant) -> Response {
    let n = {
        let mut n = mock.next_id.lock().unwrap();
        *n += 1;
        *n
    };
    let (access, refresh) = (format!("AT{n}"), format!("RT{n}"));
    mock.access
        .lock()
        .unwrap()
        .insert(access.clone(), (grant.clone(), false));
    mock.refresh
        .lock()
        .unwrap()
        .insert(refresh.clone(), grant.clone());
    let snapshot = if grant.snapshot {
        r#","is_snapshotuser":1"#
    } else {
        ""
    };
    json(format!(
        r#"{{"access_token":"{access}","expires_in":7200,"refresh_token":"{refresh}","openid":"{}","scope":"{}"{snapshot}}}"#,
        grant.openid, grant.scope
    ))
}

async fn access_token(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = begin(&mock, "/sns/oauth2/access_token").await {
        return answer;
    }
    if q.get("secret").map(String::as_str) != Some(APPSECRET) {
        return error(40125);
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return error(40002);
    }
    let Some(code) = q.get("code") else {
        return error(41008);
    };
    let grant = {
        let mut codes = mock.codes.lock().unwrap();
        match codes.get_mut(code) {
            None => return error(40029),
            Some((_, true)) => return error(40163),
            Some((grant, used)) => {
                *used = true;
                grant.clone()
            }
        }
    };
    let delay = *mock.exchange_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    grant_json(&mock, &grant)
}

async fn refresh_token(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = begin(&mock, "/sns/oauth2/refresh_token").await {
        return answer;
    }
    let grant = q
        .get("refresh_token")
        .and_then(|rt| mock.refresh.lock().unwrap().get(rt).cloned());
    match grant {
        Some(grant) => grant_json(&mock, &grant),
        None => error(42002),
    }
}

async fn userinfo(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = begin(&mock, "/sns/userinfo").await {
        return answer;
    }
    let token = q
        .get("access_token")
        .and_then(|t| mock.access.lock().unwrap().get(t).cloned());
    let Some((grant, expired)) = token else {
        return error(40001);
    };
    if expired {
        return error(42001);
    }
    if grant.scope != "snsapi_userinfo" {
        return error(48001);
    }
    if q.get("openid") != Some(&grant.openid) || q.get("lang").map(String::as_str) != Some("zh_CN")
    {
        return error(40003);
    }
    json(
        serde_json::json!({
            "openid": grant.openid,
            "nickname": format!("<script>alert(1)</script>小明🐼 {}", grant.openid),
            "sex": 1,
            "province": "广东",
            "city": "深圳",
            "country": "中国",
            "headimgurl": "https://thirdwx.qlogo.cn/mmopen/test/132",
            "privilege": ["chinaunicom"],
            "unionid": "uUnion1",
        })
        .to_string(),
    )
}

fn new_account_token(mock: &Mock, prefix: &str) -> (String, i64) {
    let n = {
        let mut n = mock.next_id.lock().unwrap();
        *n += 1;
        *n
    };
    let mut account = mock.account.lock().unwrap();
    let lifetime = account.lifetime.unwrap_or(7200);
    let token = format!("{prefix}{n}");
    account.tokens.insert(token.clone(), now() + lifetime);
    (token, lifetime)
}

fn token_json(token: &str, expires_in: i64) -> Response {
    json(format!(
        r#"{{"access_token":"{token}","expires_in":{expires_in}}}"#
    ))
}

async fn stable_token(State(mock): State<Arc<Mock>>, Json(body): Json<Value>) -> Response {
    if let Some(answer) = begin(&mock, "/cgi-bin/stable_token").await {
        return answer;
    }
    let delay = mock.account.lock().unwrap().token_delay;
    tokio::time::sleep(delay).await;
    if body["secret"] != APPSECRET {
        return error(40125);
    }
    if body["grant_type"] != "client_credential" {
        return error(40002);
    }
    let force = body["force_refresh"] == true;
    {
        let account = mock.account.lock().unwrap();
        let current = account
            .stable
            .as_ref()
            .filter(|_| !force)
            .and_then(|stable| Some((stable, *account.tokens.get(stable)?)));
        // The same token until its last five minutes; then a new one (the old still works until it expires).
        if let Some((stable, expires)) = current.filter(|(_, expires)| *expires - now() > 300) {
            return token_json(stable, expires - now());
        }
    }
    let (token, lifetime) = new_account_token(&mock, "ST");
    mock.account.lock().unwrap().stable = Some(token.clone());
    token_json(&token, lifetime)
}

/// The classic endpoint: every fetch replaces every earlier token.
async fn classic_token(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = begin(&mock, "/cgi-bin/token").await {
        return answer;
    }
    let delay = mock.account.lock().unwrap().token_delay;
    tokio::time::sleep(delay).await;
    if q.get("secret").map(String::as_str) != Some(APPSECRET) {
        return error(40125);
    }
    mock.account.lock().unwrap().tokens.clear();
    let (token, lifetime) = new_account_token(&mock, "CT");
    token_json(&token, lifetime)
}

/// Records the call and checks its access token: `Err` is the answer for a bad one.
async fn with_token(mock: &Mock, path: &str, q: &HashMap<String, String>) -> Result<(), Response> {
    if let Some(answer) = begin(mock, path).await {
        return Err(answer);
    }
    let token = q.get("access_token").cloned().unwrap_or_default();
    let mut account = mock.account.lock().unwrap();
    account.used.push((path.to_owned(), token.clone()));
    match account.tokens.get(&token) {
        None => Err(error(40001)),
        Some(&expires) if expires <= now() => Err(error(42001)),
        Some(_) => Ok(()),
    }
}

fn ok() -> Response {
    json(r#"{"errcode":0,"errmsg":"ok"}"#.into())
}

async fn ticket(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(answer) = with_token(&mock, "/cgi-bin/ticket/getticket", &q).await {
        return answer;
    }
    if q.get("type").map(String::as_str) != Some("jsapi") {
        return error(40097);
    }
    let (ticket, lifetime) = new_account_token(&mock, "TICKET");
    json(format!(
        r#"{{"errcode":0,"errmsg":"ok","ticket":"{ticket}","expires_in":{lifetime}}}"#
    ))
}

async fn menu_create(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Err(answer) = with_token(&mock, "/cgi-bin/menu/create", &q).await {
        return answer;
    }
    let Ok(menu) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    if !menu["button"].is_array() {
        return error(40016);
    }
    mock.account.lock().unwrap().menu = Some(menu);
    ok()
}

async fn menu_current(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(answer) = with_token(&mock, "/cgi-bin/get_current_selfmenu_info", &q).await {
        return answer;
    }
    let Some(menu) = mock.account.lock().unwrap().menu.clone() else {
        return json(r#"{"is_menu_open":0}"#.into());
    };
    // get_current_selfmenu_info nests sub-buttons under "list".
    let buttons: Vec<Value> = menu["button"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let mut b = b.clone();
            if let Some(subs) = b.get("sub_button").cloned() {
                b["sub_button"] = json!({ "list": subs });
            }
            b
        })
        .collect();
    json(json!({"is_menu_open": 1, "selfmenu_info": {"button": buttons}}).to_string())
}

async fn menu_delete(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(answer) = with_token(&mock, "/cgi-bin/menu/delete", &q).await {
        return answer;
    }
    mock.account.lock().unwrap().menu = None;
    ok()
}

/// Logged as soon as it arrives (before a scripted delay or error), as WeChat would have it.
async fn custom_send(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let token = q.get("access_token").cloned().unwrap_or_default();
    let valid = {
        let account = mock.account.lock().unwrap();
        account.tokens.get(&token).is_some_and(|&e| e > now())
    };
    if valid {
        mock.account.lock().unwrap().sent.push(body.clone());
    }
    if let Err(answer) = with_token(&mock, "/cgi-bin/message/custom/send", &q).await {
        // A scripted error means WeChat refused it: it was not delivered.
        if valid {
            let mut account = mock.account.lock().unwrap();
            let last = account.sent.iter().rposition(|m| *m == body);
            if let Some(i) = last {
                account.sent.remove(i);
            }
        }
        return answer;
    }
    ok()
}

async fn user_info(
    State(mock): State<Arc<Mock>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(answer) = with_token(&mock, "/cgi-bin/user/info", &q).await {
        return answer;
    }
    let openid = q.get("openid").cloned().unwrap_or_default();
    json(
        json!({
            "subscribe": 1,
            "openid": openid,
            "language": "zh_CN",
            "subscribe_time": 1_700_000_000,
            "unionid": format!("uInfo{openid}"),
            "remark": "VIP <b>",
            "groupid": 0,
            "tagid_list": [128, 2],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
        })
        .to_string(),
    )
}
