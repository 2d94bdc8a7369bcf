//! Bot rules: a fast bot's answer is the passive reply, a slow one's arrives as a customer-service
//! message, WeChat's retries reach the bot once, and a failing bot gets the rule's fallback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::*;

/// What the bot does with one request.
#[derive(Debug, Clone)]
enum Bot {
    /// Waits, then answers with this status and body.
    Answer(Duration, u16, &'static str),
}

/// One request the bot received.
#[derive(Debug, Clone)]
struct Asked {
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct BotState {
    script: Mutex<VecDeque<Bot>>,
    asked: Mutex<Vec<Asked>>,
}

async fn bot(
    State(state): State<Arc<BotState>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    state.asked.lock().unwrap().push(Asked { headers, body });
    let next = state.script.lock().unwrap().pop_front();
    let Some(Bot::Answer(wait, status, answer)) = next else {
        return (StatusCode::NO_CONTENT, "").into_response();
    };
    tokio::time::sleep(wait).await;
    (StatusCode::from_u16(status).unwrap(), answer).into_response()
}

/// A bot on loopback: its URL and its state.
async fn start_bot(script: Vec<Bot>) -> (String, Arc<BotState>) {
    let state = Arc::new(BotState::default());
    state.script.lock().unwrap().extend(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ask", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/ask", axum::routing::post(bot))
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, state)
}

fn asked(state: &BotState) -> Vec<Asked> {
    state.asked.lock().unwrap().clone()
}

/// Adds a keyword rule asking `url` within `budget_ms`, with `fallback` as its text.
async fn add_bot_rule(browser: &Browser, csrf: &str, keyword: &str, url: &str, budget_ms: &str) {
    let page = browser
        .post_form(
            "/admin/replies/new",
            &[
                ("csrf", csrf),
                ("match_mode", "exact"),
                ("keyword", keyword),
                ("reply_type", "text"),
                ("content", "稍后人工回复您"),
                ("enabled", "on"),
                ("bot_url", url),
                ("bot_budget_ms", budget_ms),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
}

/// The bot secret the rule form shows.
async fn bot_secret(browser: &Browser) -> String {
    let page = browser.get("/admin/replies/new").await.body;
    let marker = "id=\"bot-secret\">";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..].split('<').next().unwrap().to_owned()
}

fn header(a: &Asked, name: &str) -> String {
    a.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fast_bot_answers_passively_and_a_retry_gets_the_stored_answer_without_asking_again() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let (url, state) = start_bot(vec![
        Bot::Answer(Duration::ZERO, 200, r#"{"type":"text","content":"机器人：您好 ]]> <a href=\"https://x.example/\">看看</a>"}"#),
        Bot::Answer(Duration::ZERO, 200, r#"{"type":"image","media_id":"MEDIA_BOT"}"#),
        Bot::Answer(Duration::ZERO, 200, r#"{"type":"news","articles":[{"title":"新品","description":"d","pic_url":"https://x.example/p.jpg","url":"https://x.example/n"}]}"#),
    ])
    .await;
    add_bot_rule(&browser, &csrf, "问", &url, "1500").await;
    let secret = bot_secret(&browser).await;

    let push = text("oBotFast0000000000000000001", "问", "66001");
    let reply = reply_to(&app, &push).await.expect("a passive reply");
    assert_eq!(
        reply.get("Content"),
        Some("机器人：您好 ]]> <a href=\"https://x.example/\">看看</a>")
    );
    let first = asked(&state);
    assert_eq!(first.len(), 1);
    // The question: the message as events describe it, signed with the bot secret.
    let body: Value = serde_json::from_str(&first[0].body).unwrap();
    assert_eq!(
        (&body["openid"], &body["content"]),
        (&json!("oBotFast0000000000000000001"), &json!("问"))
    );
    let id = header(&first[0], "webhook-id");
    let ts: i64 = header(&first[0], "webhook-timestamp").parse().unwrap();
    assert!(wxportal::events::signature::verify(
        &secret,
        &id,
        ts,
        first[0].body.as_bytes(),
        &header(&first[0], "webhook-signature")
    ));

    // WeChat's retry: the stored answer, and the bot is not asked again.
    let again = reply_to(&app, &push).await.unwrap();
    assert_eq!(again.get("Content"), reply.get("Content"));
    assert_eq!(asked(&state).len(), 1);

    // Images by media_id and one news article.
    let image = reply_to(&app, &text("oBotFast0000000000000000001", "问", "66002"))
        .await
        .unwrap();
    assert_eq!(image.get("MsgType"), Some("image"));
    assert_eq!(image.get("Image/MediaId"), Some("MEDIA_BOT"));
    let news = reply_to(&app, &text("oBotFast0000000000000000001", "问", "66003"))
        .await
        .unwrap();
    assert_eq!(news.get("MsgType"), Some("news"));
    assert_eq!(news.get("Articles/item/Title"), Some("新品"));
    // Nothing went out as a customer-service message.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(mock.sent().is_empty(), "{:?}", mock.sent());
    // The bot's answer is the stored reply; its job is done without a send.
    let message = app
        .store
        .list_messages(&wxportal::store::MessageQuery {
            msg_type: Some("text".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(message.message.reply_xml.contains("机器人"));
    let jobs: Vec<_> = app
        .store
        .list_jobs(None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.message_id == Some(message.id))
        .collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state.as_str(), "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_bot_gets_success_then_its_answer_as_a_customer_service_message_and_retries_reach_it_once()
 {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let (url, state) = start_bot(vec![Bot::Answer(
        Duration::from_millis(2500),
        200,
        r#"{"type":"text","content":"想好了：明天发货"}"#,
    )])
    .await;
    add_bot_rule(&browser, &csrf, "几时发货", &url, "400").await;

    let follower = "oBotSlow0000000000000000001";
    let push = text(follower, "几时发货", "67001");
    let started = Instant::now();
    assert!(
        reply_to(&app, &push).await.is_none(),
        "success within the budget"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // WeChat retries (it would after 5 s; sooner here): the bot is still thinking and is not asked again.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(reply_to(&app, &push).await.is_none());
    }
    assert!(
        eventually(6, || mock.sent().len() == 1).await,
        "{:?}",
        mock.sent()
    );
    assert_eq!(
        mock.sent()[0],
        json!({"touser": follower, "msgtype": "text", "text": {"content": "想好了：明天发货"}})
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mock.sent().len(), 1);
    assert_eq!(asked(&state).len(), 1, "one question for three tries");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_that_fails_or_answers_garbage_gets_the_rules_fallback() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let (url, state) = start_bot(vec![
        Bot::Answer(Duration::ZERO, 200, "<html>oops</html>"),
        Bot::Answer(
            Duration::ZERO,
            500,
            r#"{"type":"text","content":"not this"}"#,
        ),
        Bot::Answer(Duration::ZERO, 200, r#"{"type":"voice","media_id":"m"}"#),
        // Late and garbage: the fallback goes out as a customer-service message.
        Bot::Answer(Duration::from_millis(1200), 200, "{"),
    ])
    .await;
    add_bot_rule(&browser, &csrf, "帮助", &url, "600").await;
    let follower = "oBotBad00000000000000000001";
    for id in ["68001", "68002", "68003"] {
        let reply = reply_to(&app, &text(follower, "帮助", id)).await.unwrap();
        assert_eq!(reply.get("Content"), Some("稍后人工回复您"), "{id}");
    }
    assert!(
        reply_to(&app, &text(follower, "帮助", "68004"))
            .await
            .is_none()
    );
    assert!(eventually(5, || mock.sent().len() == 1).await);
    assert_eq!(mock.sent()[0]["text"]["content"], "稍后人工回复您");
    assert_eq!(asked(&state).len(), 4);
    // A bot that is down: the fallback too.
    let (browser2, csrf2) = (browser, csrf);
    add_bot_rule(&browser2, &csrf2, "宕机", "http://127.0.0.1:9/ask", "600").await;
    let reply = reply_to(&app, &text(follower, "宕机", "68005"))
        .await
        .unwrap();
    assert_eq!(reply.get("Content"), Some("稍后人工回复您"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_rule_with_a_bad_url_or_budget_is_refused_and_nothing_stored() {
    let (app, _mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let before = app.store.reply_rules().await.unwrap().len();
    for (url, budget, problem) in [
        ("ftp://bot.example/", "1000", "bot URL"),
        ("https://u:p@bot.example/", "1000", "bot URL"),
        ("https://bot.example/", "99999", "budget"),
        ("https://bot.example/", "abc", "budget"),
    ] {
        let page = browser
            .post_form(
                "/admin/replies/new",
                &[
                    ("csrf", &csrf),
                    ("match_mode", "exact"),
                    ("keyword", "问"),
                    ("reply_type", "text"),
                    ("content", "备用"),
                    ("enabled", "on"),
                    ("bot_url", url),
                    ("bot_budget_ms", budget),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{url} {budget}");
        assert!(page.body.contains(problem), "{}", page.body);
    }
    assert_eq!(app.store.reply_rules().await.unwrap().len(), before);
}
