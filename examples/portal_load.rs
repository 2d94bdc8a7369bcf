//! Load for the portal benchmark (bench/portal.sh) against `wxportal demo` and its WeChat simulator.
//!
//! `cargo run --release --example portal_load -- SCENARIO BASE_URL [CONNECTIONS] [SECONDS]`
//! - `flow`: whole authorizations, as a phone does them: `/auth/login` → the simulator's consent page →
//!   allow → `/auth/callback` (code exchange and userinfo over real HTTP, profile stored, session cycled)
//!   → `/me`. One flow = five requests.
//! - `me`: each connection signs in once, then loads `/me` over and over.
//! - `healthz`: `GET /healthz`, the machine's ceiling in the same run.
//! - `admin:PATH`: the admin area is signed in to once (password in `WXPORTAL_ADMIN_PASSWORD`,
//!   admin `admin`), shared by every connection, then loads `PATH` (e.g. `/admin/users?q=…`) over and over.
//! - `get:PATH`: `GET PATH` over and over, expecting 200 (e.g. `/jssdk/config?url=…`).
//! - `oidc-signin`: each connection signs in to the portal once; then whole OpenID Connect sign-ins of an
//!   app, as the one-tap case inside WeChat: `/oidc/authorize` (PKCE) → the code → `/oidc/token` →
//!   `/oidc/userinfo`. One sign-in = three requests. The app is `BENCH_CLIENT_ID` / `BENCH_CLIENT_SECRET`,
//!   registered with the redirect URI `http://127.0.0.1/cb`.
//! - `oidc-token`: each connection signs in once, then exchanges its refresh token over and over (each
//!   exchange rotates it): the token endpoint alone.
//! - `oidc-userinfo`: each connection signs in once, then reads `/oidc/userinfo` over and over.
//!
//! Prints one line: scenario, operations/s, p50 and p99 latency per operation, errors.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

const UA: &str = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50";

struct Phone {
    http: reqwest::Client,
    base: String,
    /// The cookie jar: name and value.
    cookies: Vec<(String, String)>,
}

impl Phone {
    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Option<String>), String> {
        let mut request = request.header("user-agent", UA);
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(COOKIE, header.join("; "));
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        self.keep_cookies(response.headers());
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        response.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, location))
    }

    /// Takes the cookies a response sets (and drops those it expires).
    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for set in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            self.cookies.retain(|(k, _)| k != name);
            if !set.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// One authorization, start to profile page.
    async fn flow(&mut self, follower: usize) -> Result<(), String> {
        let (_, authorize) = self.send(self.http.get(self.url("/auth/login"))).await?;
        let authorize = authorize.ok_or("login did not redirect")?;
        let consent = authorize.trim_end_matches("#wechat_redirect").to_owned();
        let (status, _) = self.send(self.http.get(&consent)).await?;
        if status != 200 {
            return Err(format!("consent page {status}"));
        }
        let query: Vec<(String, String)> = reqwest::Url::parse(&consent)
            .map_err(|e| e.to_string())?
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |k: &str| {
            query
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let follower = follower.to_string();
        let form = [
            ("follower", follower.as_str()),
            ("decision", "allow"),
            ("redirect_uri", &get("redirect_uri")),
            ("state", &get("state")),
            ("scope", &get("scope")),
        ];
        let decide = self.url("/_sim/open/connect/oauth2/authorize");
        let (_, callback) = self.send(self.http.post(decide).form(&form)).await?;
        let callback = callback.ok_or("consent did not redirect")?;
        let (status, next) = self.send(self.http.get(self.url(&callback))).await?;
        if status != 302 || next.as_deref() != Some("/me") {
            return Err(format!("callback {status} → {next:?}"));
        }
        self.me().await
    }

    /// Signs in to the admin area as `admin`.
    async fn admin_sign_in(&mut self, password: &str) -> Result<(), String> {
        let response = self
            .http
            .get(self.url("/admin/login"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        self.keep_cookies(response.headers());
        let page = response.text().await.map_err(|e| e.to_string())?;
        let marker = "name=\"csrf\" value=\"";
        let at = page
            .find(marker)
            .ok_or("no CSRF token on the sign-in page")?
            + marker.len();
        let form = [
            ("csrf", &page[at..at + 32]),
            ("name", "admin"),
            ("password", password),
        ];
        match self
            .send(self.http.post(self.url("/admin/login")).form(&form))
            .await?
        {
            (303, Some(next)) if next.starts_with("/admin") => Ok(()),
            other => Err(format!("admin sign-in failed: {other:?}")),
        }
    }

    async fn get_ok(&mut self, path: &str) -> Result<(), String> {
        match self.send(self.http.get(self.url(path))).await? {
            (200, _) => Ok(()),
            (status, _) => Err(format!("{path} {status}")),
        }
    }

    /// One OpenID Connect sign-in of the bench app for a follower signed in to the portal: the tokens.
    async fn oidc(&mut self, app: &(String, String)) -> Result<serde_json::Value, String> {
        use base64::Engine;
        let verifier = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let authorize = format!(
            "/oidc/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=openid%20profile&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
            app.0
        );
        let (status, back) = self.send(self.http.get(self.url(&authorize))).await?;
        let back = back.ok_or(format!("authorize {status} did not redirect"))?;
        let code = reqwest::Url::parse(&back)
            .map_err(|e| e.to_string())?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or(format!("no code in {back}"))?;
        let tokens = self
            .token(
                app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1/cb"),
                    ("code_verifier", &verifier),
                ],
            )
            .await?;
        self.userinfo(tokens["access_token"].as_str().unwrap_or_default())
            .await?;
        Ok(tokens)
    }

    async fn token(
        &self,
        app: &(String, String),
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let response = self
            .http
            .post(self.url("/oidc/token"))
            .basic_auth(&app.0, Some(&app.1))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("token {status}: {body}"));
        }
        Ok(body)
    }

    async fn userinfo(&self, access_token: &str) -> Result<(), String> {
        let response = self
            .http
            .get(self.url("/oidc/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        response.bytes().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("userinfo {status}"));
        }
        Ok(())
    }

    async fn me(&mut self) -> Result<(), String> {
        match self.send(self.http.get(self.url("/me"))).await? {
            (200, _) => Ok(()),
            (status, _) => Err(format!("/me {status}")),
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).cloned().unwrap_or_else(|| "flow".into());
    let base = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let connections: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let http = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    // One operator session for every admin connection: sign-in attempts from one address are limited
    // (and counted before the password is checked), so 64 at once would be refused as a flood.
    let mut admin = Phone {
        http: http.clone(),
        base: base.clone(),
        cookies: Vec::new(),
    };
    if scenario.starts_with("admin:") {
        let password = std::env::var("WXPORTAL_ADMIN_PASSWORD").unwrap_or_default();
        if let Err(e) = admin.admin_sign_in(&password).await {
            eprintln!("error: {e}");
            return;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|i| {
            let mut phone = Phone {
                http: http.clone(),
                base: base.clone(),
                cookies: admin.cookies.clone(),
            };
            let scenario = scenario.clone();
            let app = (
                std::env::var("BENCH_CLIENT_ID").unwrap_or_default(),
                std::env::var("BENCH_CLIENT_SECRET").unwrap_or_default(),
            );
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                let admin_path = scenario.strip_prefix("admin:").map(str::to_owned);
                let get_path = scenario.strip_prefix("get:").map(str::to_owned);
                let ready = match scenario.as_str() {
                    "me" | "oidc-signin" => phone.flow(i % 4).await,
                    _ => Ok(()),
                };
                // The tokens of one sign-in, for the scenarios that reuse them.
                let mut tokens = serde_json::Value::Null;
                let ready = match (ready, scenario.as_str()) {
                    (Ok(()), "oidc-token" | "oidc-userinfo") => match phone.flow(i % 4).await {
                        Ok(()) => phone.oidc(&app).await.map(|t| tokens = t),
                        Err(e) => Err(e),
                    },
                    (ready, _) => ready,
                };
                if let Err(e) = ready {
                    eprintln!("error: {e}");
                    return (latencies, 1);
                }
                let mut n = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let result = match scenario.as_str() {
                        _ if admin_path.is_some() => {
                            phone
                                .get_ok(admin_path.as_deref().unwrap_or_default())
                                .await
                        }
                        _ if get_path.is_some() => {
                            phone.get_ok(get_path.as_deref().unwrap_or_default()).await
                        }
                        "flow" => phone.flow((i + n) % 4).await,
                        "me" => phone.me().await,
                        "oidc-signin" => phone.oidc(&app).await.map(|_| ()),
                        "oidc-token" => {
                            let refresh = tokens["refresh_token"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned();
                            phone
                                .token(
                                    &app,
                                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                                )
                                .await
                                .map(|t| tokens = t)
                        }
                        "oidc-userinfo" => {
                            phone
                                .userinfo(tokens["access_token"].as_str().unwrap_or_default())
                                .await
                        }
                        _ => phone
                            .send(phone.http.get(phone.url("/healthz")))
                            .await
                            .map(|_| ()),
                    };
                    match result {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(e) => {
                            if errors == 0 {
                                eprintln!("error: {e}");
                            }
                            errors += 1;
                        }
                    }
                    n += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{:<24} {:>9.0} ops/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ops, {} errors, {connections} connections)",
        scenario.chars().take(24).collect::<String>(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.len(),
        errors
    );
}
