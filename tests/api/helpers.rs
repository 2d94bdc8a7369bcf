//! Spawning the application and talking to it as WeChat would.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;

pub use crate::db::{Backend, RawDb, TestDb};
use tokio::task::JoinHandle;
use wxportal::app::App;
use wxportal::config::Config;
use wxportal::store::Store;
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;
use wxportal::wechat::push::{Push, SignedPush};
use wxportal::wechat::{AesKey, MessageCrypto};

pub const TOKEN: &str = "testToken123";
pub const APPID: &str = "wx1234567890abcdef";
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const OLD_AES_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut";
pub const PUBLIC_URL: &str = "http://portal.test";

/// A running server with its own database file.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub keys: wxportal::web::keys::Keys,
    pub db: Arc<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Starts a server with the default test settings overridden by `vars`.
    pub async fn spawn(vars: &[(&str, &str)]) -> Self {
        Self::spawn_in(Arc::new(TestDb::fresh().await), vars).await
    }

    /// Starts a server on `db` (to restart on the same data, or run two on one database).
    pub async fn spawn_in(db: Arc<TestDb>, vars: &[(&str, &str)]) -> Self {
        let database_url = db.url.clone();
        let mut all: Vec<(String, String)> = vec![
            ("WXPORTAL_TOKEN".into(), TOKEN.into()),
            ("WXPORTAL_APPID".into(), APPID.into()),
            ("WXPORTAL_BIND".into(), "127.0.0.1:0".into()),
            ("WXPORTAL_DATABASE_URL".into(), database_url),
            ("WXPORTAL_PUBLIC_URL".into(), PUBLIC_URL.into()),
            // No follower sync by the clock: a test run at 03:00 Beijing time would start one.
            ("WXPORTAL_SYNC_HOUR".into(), "off".into()),
        ];
        for (k, v) in vars {
            all.retain(|(name, _)| name != k);
            all.push((k.to_string(), v.to_string()));
        }
        let config =
            Config::from_lookup(|name| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
                .expect("test configuration is valid");
        let app = App::build(config).await.expect("app starts");
        let base = format!("http://{}", app.addr());
        let store = app.state().store.clone();
        let keys = app.state().keys.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        let client = wxportal::upstream::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            client,
            store,
            keys,
            db,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Posts a signed push and returns status and body.
    pub async fn post_signed(&self, signed: &SignedPush) -> (u16, String) {
        let response = self
            .client
            .post(signed.url(&self.url("/wechat")))
            .header("content-type", "text/xml")
            .body(signed.body.clone())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Signs `push` in `mode` with the test Token (and `crypto`), posts it, returns status and body.
    pub async fn post(
        &self,
        push: &Push,
        mode: MessageMode,
        crypto: Option<&MessageCrypto>,
    ) -> (u16, String) {
        let signed = push.sign(
            TOKEN,
            mode,
            crypto,
            &unix_now().to_string(),
            &wxportal::cli::send::nonce(),
        );
        self.post_signed(&signed).await
    }

    /// `GET /wechat` with the given query: the URL-verification handshake.
    pub async fn get_wechat(&self, query: &[(&str, String)]) -> (u16, String) {
        let response = self
            .client
            .get(self.url("/wechat"))
            .query(query)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Posts raw query and body, for malformed requests.
    pub async fn post_raw(
        &self,
        query: &[(&str, String)],
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(self.url("/wechat"))
            .query(query)
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A direct connection to the database, to seed or inspect it.
    pub async fn raw_db(&self) -> RawDb {
        self.db.connect().await
    }

    pub async fn message_count(&self) -> i64 {
        self.store.count_messages().await.unwrap()
    }

    /// How many rows `table` holds.
    pub async fn rows(&self, table: &str) -> i64 {
        self.raw_db()
            .await
            .number(&format!("SELECT count(*) FROM {table}"))
            .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn crypto(key: &str) -> MessageCrypto {
    MessageCrypto::new(AesKey::from_encoding_aes_key(key).unwrap(), APPID)
}

/// A text message from follower `from` with `msg_id`.
pub fn text(from: &str, content: &str, msg_id: &str) -> Push {
    Push {
        to: "gh_test".into(),
        from: from.into(),
        create_time: unix_now(),
        msg_type: "text".into(),
        fields: vec![
            ("Content".into(), content.into()),
            ("MsgId".into(), msg_id.into()),
        ],
    }
}

/// An event from `from` at `create_time`.
pub fn event(from: &str, name: &str, create_time: i64) -> Push {
    Push {
        to: "gh_test".into(),
        from: from.into(),
        create_time,
        msg_type: "event".into(),
        fields: vec![
            ("Event".into(), name.into()),
            ("EventKey".into(), String::new()),
        ],
    }
}

/// Signature query pairs with the test Token for a given timestamp.
pub fn signed_query(timestamp: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "signature",
            wxportal::wechat::signature::sign(&[TOKEN, timestamp, "42"]),
        ),
        ("timestamp", timestamp.to_owned()),
        ("nonce", "42".to_owned()),
    ]
}

/// One page load as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's (first) form.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[start..start + 32].to_owned()
    }
}

/// A phone's browser: keeps its cookies between requests, follows nothing on its own.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    /// Cookies by name, in the order they were first set.
    cookies: std::sync::Mutex<Vec<(String, String)>>,
    /// Where the last authorization started comes back (`redirect_uri`, as a local path).
    callback_path: std::sync::Mutex<String>,
}

/// WeChat's in-app browser on an iPhone, as its User-Agent says.
pub const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322f) NetType/WIFI Language/zh_CN";

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.base, app.client.clone())
    }

    /// A browser for the server at `base` (a demo, say), sending through `client`.
    pub fn at(base: &str, client: reqwest::Client) -> Self {
        Self {
            base: base.to_owned(),
            client,
            cookies: std::sync::Mutex::new(Vec::new()),
            callback_path: std::sync::Mutex::new("/auth/callback?".into()),
        }
    }

    /// Every cookie as a `Cookie` header (`a=1; b=2`), if any was set.
    pub fn cookie(&self) -> Option<String> {
        let cookies = self.cookies.lock().unwrap();
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// One cookie's value.
    pub fn cookie_named(&self, name: &str) -> Option<String> {
        let cookies = self.cookies.lock().unwrap();
        cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Carries another browser's cookies (the same phone, balanced onto another instance).
    pub fn set_cookie(&self, cookie: Option<String>) {
        let mut cookies = self.cookies.lock().unwrap();
        cookies.clear();
        for pair in cookie.iter().flat_map(|c| c.split("; ")) {
            if let Some((k, v)) = pair.split_once('=') {
                cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    /// Drops the cookies, as WeChat's browser sometimes does.
    pub fn forget_cookies(&self) {
        self.cookies.lock().unwrap().clear();
    }

    pub async fn get(&self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Posts `fields` as `multipart/form-data`, with `image` as the file field `image` if given
    /// (filename, bytes).
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        image: Option<(&str, Vec<u8>)>,
    ) -> Page {
        self.send(self.multipart(path, fields, image)).await
    }

    /// Posts a body the server refuses before reading it all: its answer, or `None` when the server
    /// closed the connection while the body was still being sent (the client then never reads the
    /// answer; which of the two happens is a race).
    pub async fn post_multipart_refused(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        image: Option<(&str, Vec<u8>)>,
    ) -> Option<Page> {
        match self
            .prepare(self.multipart(path, fields, image))
            .send()
            .await
        {
            Ok(response) => Some(Page {
                status: response.status().as_u16(),
                location: None,
                body: response.text().await.unwrap_or_default(),
            }),
            Err(e) if e.is_request() => None,
            Err(e) => panic!("{e}"),
        }
    }

    fn multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        image: Option<(&str, Vec<u8>)>,
    ) -> reqwest::RequestBuilder {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        if let Some((filename, bytes)) = image {
            form = form.part(
                "image",
                reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()),
            );
        }
        self.client
            .post(format!("{}{path}", self.base))
            .multipart(form)
    }

    /// A GET whose answer is not text: status, content type and bytes.
    pub async fn get_bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let response = self
            .prepare(self.client.get(format!("{}{path}", self.base)))
            .send()
            .await
            .unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let status = response.status().as_u16();
        (
            status,
            content_type,
            response.bytes().await.unwrap().to_vec(),
        )
    }

    fn prepare(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request = request.header("user-agent", WECHAT_UA);
        if let Some(cookie) = self.cookie() {
            request = request.header("cookie", cookie);
        }
        request
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let response = self.prepare(request).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap().trim();
            let (name, value) = pair.split_once('=').unwrap();
            let removed = set.to_ascii_lowercase().contains("max-age=0");
            let mut cookies = self.cookies.lock().unwrap();
            match cookies.iter_mut().find(|(k, _)| k == name) {
                _ if removed => cookies.retain(|(k, _)| k != name),
                Some(slot) => slot.1 = value.to_owned(),
                None => cookies.push((name.to_owned(), value.to_owned())),
            }
        }
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }

    /// `/auth/login` → the state WeChat's authorize URL carries (and where it comes back to is kept
    /// for [`Browser::callback`]).
    pub async fn start_login(&self, query: &str) -> String {
        let page = self.get(&format!("/auth/login{query}")).await;
        assert_eq!(page.status, 302, "{page:?}");
        let location = page.location.unwrap();
        let url = reqwest::Url::parse(&location).unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let back = reqwest::Url::parse(&param("redirect_uri").expect("a redirect_uri")).unwrap();
        *self.callback_path.lock().unwrap() = match back.query() {
            Some(q) => format!("{}?{q}&", back.path()),
            None => format!("{}?", back.path()),
        };
        param("state").expect("a state in the authorize URL")
    }

    /// The callback WeChat redirects to, for the authorization started last.
    pub async fn callback(&self, code: &str, state: &str) -> Page {
        let path = self.callback_path.lock().unwrap().clone();
        self.get(&format!("{path}code={code}&state={state}")).await
    }
}

/// The follower's choice on the demo simulator's consent page, posted as its form does: the answer,
/// which redirects to `redirect_uri` with a code when the simulator accepts it.
pub async fn simulator_allows(
    client: &reqwest::Client,
    base: &str,
    redirect_uri: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/_sim/open/connect/oauth2/authorize"))
        .form(&[
            ("follower", "0"),
            ("decision", "allow"),
            ("redirect_uri", redirect_uri),
            ("state", "s"),
            ("scope", "snsapi_base"),
        ])
        .send()
        .await
        .unwrap()
}

/// `wxportal demo` (simulator mounted) on a random port with its own database: its base URL, the
/// directory to keep alive while it runs, and the banner it prints.
/// The admin password a demo banner prints.
pub fn demo_password(banner: &str) -> String {
    banner
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the banner prints the admin password")
        .to_owned()
}

pub async fn spawn_demo() -> (String, TestDb, String) {
    let db = TestDb::fresh().await;
    let (demo, banner) = wxportal::demo::build(&[
        ("WXPORTAL_BIND", "127.0.0.1:0".to_owned()),
        ("WXPORTAL_DATABASE_URL", db.url.clone()),
    ])
    .await
    .unwrap();
    let base = format!("http://{}", demo.addr());
    tokio::spawn(demo.run(std::future::pending()));
    (base, db, banner)
}

/// The real binary serving on a free port: for what only separate processes show (a shared database,
/// kill -9).
pub struct ServerProcess {
    pub base: String,
    child: std::process::Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `wxportal serve` with the test settings on `db` and `vars`; waits until ready.
    pub async fn start(db: &TestDb, vars: &[(&str, &str)]) -> Self {
        let dir = db.dir.path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("server-{port}.log"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wxportal"));
        cmd.arg("serve")
            .env_clear()
            .env("WXPORTAL_TOKEN", TOKEN)
            .env("WXPORTAL_APPID", APPID)
            .env("WXPORTAL_BIND", format!("127.0.0.1:{port}"))
            .env("WXPORTAL_DATABASE_URL", &db.url)
            .env("WXPORTAL_PUBLIC_URL", PUBLIC_URL)
            .env("WXPORTAL_SYNC_HOUR", "off")
            .env("RUST_LOG", "info")
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        let client = wxportal::upstream::client_builder().build().unwrap();
        for _ in 0..200 {
            let ready = client.get(format!("{}/readyz", server.base)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server did not start: {}", server.log());
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts `push` to the instance at `base` (plaintext mode) as WeChat does: status and body, or `None`
/// when the instance could not be reached.
pub async fn post_to(client: &reqwest::Client, base: &str, push: &Push) -> Option<(u16, String)> {
    let signed = push.sign(
        TOKEN,
        MessageMode::Plain,
        None,
        &unix_now().to_string(),
        &wxportal::cli::send::nonce(),
    );
    let response = client
        .post(signed.url(&format!("{base}/wechat")))
        .header("content-type", "text/xml")
        .body(signed.body.clone())
        .send()
        .await
        .ok()?;
    Some((response.status().as_u16(), response.text().await.ok()?))
}

/// The operator `ops` in `db` (through a store of the test's own, closed by the caller) and a client
/// that follows no redirect, to sign in with.
pub async fn with_operator(db: &TestDb) -> (Store, reqwest::Client) {
    let store = Store::connect(&db.url, wxportal::config::SqliteSync::Full)
        .await
        .unwrap();
    let hash = wxportal::passwords::hash(crate::admin::PASSWORD).unwrap();
    assert!(store.create_admin("ops", &hash).await.unwrap());
    let client = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (store, client)
}

/// Polls `check` every 50 ms for up to `secs` seconds; true once it holds.
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    check()
}

/// Runs the binary with only `WXPORTAL_DATABASE_URL` set: (succeeded, standard output — the JSON — or,
/// on failure, standard error).
pub fn wxportal_cli(args: &[&str], db: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxportal"))
        .args(args)
        .env_clear()
        .env("WXPORTAL_DATABASE_URL", db)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    (out.status.success(), text)
}
