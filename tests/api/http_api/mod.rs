//! The HTTP API under `/api/v1`: tokens made from the command line (shown once, stored hashed), every
//! route's authentication and scope, pagination, and the JSON errors a caller can match on.

use std::collections::HashSet;

use serde_json::Value;
use wxportal::wechat::MessageMode;

use crate::admin::{openid, seed_users};
use crate::helpers::*;

mod openapi;
mod write;

/// Makes a token with `scopes` through the CLI; (id, token).
pub(crate) fn token(app: &TestApp, scopes: &str) -> (String, String) {
    let (ok, out) = wxportal_cli(&["token", "create", "crm", "--scopes", scopes], &app.db.url);
    assert!(ok, "{out}");
    let made: Value = serde_json::from_str(&out).unwrap();
    (
        made["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    )
}

/// What the API answered: status, headers, the JSON body.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// `method path` with `token` (if any), a raw JSON `body` (if any) and more `headers`.
pub(crate) async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    Reply {
        status,
        headers,
        json,
    }
}

/// GET `path` with `token` (if any): status, the `WWW-Authenticate` header, the JSON body.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String, Value) {
    let reply = call(app, reqwest::Method::GET, path, token, None, &[]).await;
    (reply.status, reply.header("www-authenticate"), reply.json)
}

/// POST `body` to `path` with `token`, and an `Idempotency-Key` if one is given.
pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &str,
    key: Option<&str>,
) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    call(
        app,
        reqwest::Method::POST,
        path,
        token,
        Some(body),
        &headers,
    )
    .await
}

pub(crate) fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_shown_once_stored_hashed_listed_and_revoked_at_once() {
    let app = TestApp::spawn(&[]).await;
    seed_users(&app, 3, |i| format!("粉丝{i}")).await;
    let (id, secret) = token(&app, "followers:read");
    assert!(secret.starts_with("wxp_") && secret.len() > 40, "{secret}");
    let stored = app
        .raw_db()
        .await
        .text("SELECT token_hash || name || scopes FROM api_tokens")
        .await;
    assert!(!stored.contains(&secret), "only the hash is kept");
    assert!(stored.contains(&wxportal::oidc::hash(&secret)));

    let (status, _, body) = get(&app, "/api/v1/followers", Some(&secret)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 3);

    let (ok, listed) = wxportal_cli(&["token", "list"], &app.db.url);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert!(ok);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["scopes"][0], "followers:read");
    assert!(listed[0]["last_used_at"].is_i64(), "its use is recorded");
    assert!(!listed.to_string().contains(&secret));

    let (ok, out) = wxportal_cli(&["token", "revoke", &id], &app.db.url);
    assert!(ok, "{out}");
    let (status, challenge, body) = get(&app, "/api/v1/followers", Some(&secret)).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let (ok, out) = wxportal_cli(&["token", "revoke", &id], &app.db.url);
    assert!(!ok && out.contains("no live token"), "{out}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_refuses_unknown_scopes_and_empty_names_and_stores_nothing() {
    let app = TestApp::spawn(&[]).await;
    for bad in [
        vec![
            "token",
            "create",
            "crm",
            "--scopes",
            "followers:read,everything",
        ],
        vec!["token", "create", " ", "--scopes", "followers:read"],
        vec!["token", "create", "crm"],
    ] {
        let (ok, out) = wxportal_cli(&bad, &app.db.url);
        assert!(!ok, "{bad:?} was accepted: {out}");
    }
    let (_, out) = wxportal_cli(
        &[
            "token",
            "create",
            "crm",
            "--scopes",
            "followers:read,everything",
        ],
        &app.db.url,
    );
    assert!(out.contains("unknown scope \"everything\""), "{out}");
    assert_eq!(app.rows("api_tokens").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_a_missing_junk_or_narrow_token_and_writes_nothing() {
    let app = TestApp::spawn(&[]).await;
    seed_users(&app, 1, |_| "小明".into()).await;
    let (_, narrow) = token(&app, "messages:read");
    let (_, reader) = token(&app, "followers:read");
    let one = format!("/api/v1/followers/{}", openid(0));
    let messages = format!("/api/v1/followers/{}/messages", openid(0));
    let routes = [
        ("/api/v1/followers", "followers:read"),
        (one.as_str(), "followers:read"),
        (messages.as_str(), "messages:read"),
    ];
    for (path, scope) in routes {
        let (status, challenge, body) = get(&app, path, None).await;
        assert_eq!(
            (status, code(&body)),
            (401, "unauthorized"),
            "{path}: {body}"
        );
        assert_eq!(challenge, "Bearer realm=\"wxportal\"");
        for junk in ["wxp_nope", "not-a-token", &"wxp_a".repeat(40)] {
            let (status, _, body) = get(&app, path, Some(junk)).await;
            assert_eq!(
                (status, code(&body)),
                (401, "unauthorized"),
                "{path}: {body}"
            );
        }
        let wrong = if scope == "followers:read" {
            &narrow
        } else {
            &reader
        };
        let (status, challenge, body) = get(&app, path, Some(wrong)).await;
        assert_eq!(
            (status, code(&body)),
            (403, "insufficient_scope"),
            "{path}: {body}"
        );
        assert!(
            challenge.contains("error=\"insufficient_scope\"") && challenge.contains(scope),
            "{challenge}"
        );
    }
    // Refused callers changed nothing: no token was marked used but the two the scope checks read.
    let used = app
        .raw_db()
        .await
        .number("SELECT count(*) FROM api_tokens WHERE last_used_at IS NOT NULL")
        .await;
    assert_eq!(used, 2);
    assert_eq!(app.rows("api_tokens").await, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queries_and_unknown_routes_get_json_errors_with_stable_codes() {
    let app = TestApp::spawn(&[]).await;
    let (_, all) = token(&app, "followers:read,messages:read");
    for (path, status, expected) in [
        ("/api/v1/followers?limit=0", 400, "invalid_request"),
        ("/api/v1/followers?limit=201", 400, "invalid_request"),
        ("/api/v1/followers?limit=ten", 400, "invalid_request"),
        ("/api/v1/followers?cursor=%%%", 400, "invalid_request"),
        (
            "/api/v1/followers?cursor=bm90LWEtY3Vyc29y",
            400,
            "invalid_request",
        ),
        ("/api/v1/followers?subscribed=maybe", 400, "invalid_request"),
        ("/api/v1/followers?sort=name", 400, "invalid_request"),
        ("/api/v1/followers?limit=1&limit=2", 400, "invalid_request"),
        ("/api/v1/followers/oNobody", 404, "not_found"),
        ("/api/v1/followers/oNobody/messages", 404, "not_found"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ] {
        let (got, _, body) = get(&app, path, Some(&all)).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let long = "长".repeat(65);
    let (got, _, body) = get(
        &app,
        &format!("/api/v1/followers?search={}", urlencoding::encode(&long)),
        Some(&all),
    )
    .await;
    assert_eq!((got, code(&body)), (400, "invalid_request"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_and_their_conversation_come_from_what_the_webhook_stored() {
    let app = TestApp::spawn(&[]).await;
    let (_, all) = token(&app, "followers:read,messages:read");
    let who = "oApiFollower00000000000000001";
    for i in 0..5 {
        let (status, _) = app
            .post(
                &text(who, &format!("第{i}条"), &format!("7{i}")),
                MessageMode::Plain,
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _, one) = get(&app, &format!("/api/v1/followers/{who}"), Some(&all)).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["openid"], who);
    assert_eq!(one["subscribed"], true, "a follower who writes follows");
    assert!(one.get("access_token").is_none() && one.get("refresh_token").is_none());

    let path = format!("/api/v1/followers/{who}/messages?limit=2");
    let (_, _, first) = get(&app, &path, Some(&all)).await;
    let contents = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["fields"]["Content"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(contents(&first), ["第4条", "第3条"]);
    assert_eq!(first["data"][0]["type"], "text");
    let mut seen = contents(&first);
    let mut before = first["next_before"].as_i64();
    while let Some(id) = before {
        let (_, _, page) = get(&app, &format!("{path}&before={id}"), Some(&all)).await;
        seen.extend(contents(&page));
        before = page["next_before"].as_i64();
    }
    assert_eq!(seen, ["第4条", "第3条", "第2条", "第1条", "第0条"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_walks_100000_followers_each_once_and_search_narrows_them() {
    let app = TestApp::spawn(&[]).await;
    let n = 100_000;
    seed_users(&app, n, |i| format!("粉丝{i}")).await;
    let (_, reader) = token(&app, "followers:read");
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut last_seen_at = i64::MAX;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/followers?limit=200&cursor={c}"),
            None => "/api/v1/followers?limit=200".to_owned(),
        };
        let (status, _, page) = get(&app, &path, Some(&reader)).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for follower in page["data"].as_array().unwrap() {
            let at = follower["last_seen_at"].as_i64().unwrap();
            assert!(at <= last_seen_at, "most recently seen first");
            last_seen_at = at;
            assert!(
                seen.insert(follower["openid"].as_str().unwrap().to_owned()),
                "{follower} twice"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (n, n / 200));

    let (_, _, found) = get(&app, "/api/v1/followers?search=粉丝99999", Some(&reader)).await;
    let found: Vec<&str> = found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["openid"].as_str().unwrap())
        .collect();
    assert_eq!(found, [openid(99_999)]);
    let (_, _, subscribed) = get(
        &app,
        "/api/v1/followers?subscribed=false&limit=200",
        Some(&reader),
    )
    .await;
    assert!(
        subscribed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["subscribed"] == false)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_area_makes_shows_once_and_revokes_tokens() {
    let app = crate::admin::with_admin(&[]).await;
    let (browser, csrf) = crate::admin::signed_in(&app).await;
    let made = browser
        .post_form(
            "/admin/tokens",
            &[
                ("csrf", csrf.as_str()),
                ("name", "订单系统"),
                ("scope", "followers:read"),
                ("scope", "templates:send"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let token = made
        .body
        .split("id=\"shown-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert!(token.starts_with("wxp_"));
    let (status, _, _) = get(&app, "/api/v1/followers", Some(&token)).await;
    assert_eq!(status, 200);
    let listed = browser.get("/admin/tokens").await;
    assert!(!listed.body.contains(&token), "shown once only");
    assert!(listed.body.contains("followers:read templates:send"));
    let bad = browser
        .post_form(
            "/admin/tokens",
            &[("csrf", csrf.as_str()), ("name", "x"), ("scope", "root")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(app.rows("api_tokens").await, 1);
    let id = app.raw_db().await.text("SELECT id FROM api_tokens").await;
    let revoked = browser
        .post_form(
            &format!("/admin/tokens/{id}/revoke"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let (status, _, _) = get(&app, "/api/v1/followers", Some(&token)).await;
    assert_eq!(status, 401);
    app.stop().await;
}
