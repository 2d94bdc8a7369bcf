//! A mock of WeChat's `sns` API on loopback: real codes and tokens, call counting, scripted failures.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
