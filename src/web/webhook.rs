//! `/wechat`: URL verification (GET) and message delivery (POST) in plaintext, compatible and safe mode,
//! with retries deduplicated and every message stored with its reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::web::metrics::MessageOutcome;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::bot::{self, BotRule};
use crate::config::Config;
use crate::replies::Answer;
use crate::store::{JobKind, NewMessage, Recorded, Scan};
use crate::time::unix_now;
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::wechat::MessageMode;
use crate::wechat::reply::encrypted_envelope;
use crate::wechat::{Event, Inbound, MessageCrypto, MessageKind, Reply, XmlFields, signature};

/// WeChat's messages are a few kilobytes; anything far larger is not from WeChat.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Reply logic must finish well inside WeChat's 5 seconds; past this the answer is `success`.
pub(crate) const REPLY_DEADLINE: Duration = Duration::from_secs(3);

/// The webhook's own state: keys and the retries in flight.
#[derive(Debug)]
pub(crate) struct Webhook {
    token: String,
    mode: MessageMode,
    max_clock_skew: Option<Duration>,
    /// The current key first, then the previous one during a rotation.
    keys: Vec<MessageCrypto>,
    /// Messages being handled now, by dedup key: concurrent tries of one message wait for the first.
    in_flight: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
}

impl Webhook {
    pub fn new(config: &Config) -> Self {
        let keys = [&config.aes_key, &config.aes_key_previous]
            .into_iter()
            .flatten()
            .map(|(_, key)| MessageCrypto::new(key.clone(), config.appid.clone()))
            .collect();
        Self {
            token: config.token.expose().to_owned(),
            mode: config.message_mode,
            max_clock_skew: config.max_clock_skew,
            keys,
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

/// `/wechat`, with the webhook's own settings and in-flight messages.
pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/wechat", get(verify).post(receive))
        .layer(Extension(Arc::new(Webhook::new(config))))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The query string WeChat adds to every request.
#[derive(Debug, Deserialize)]
struct Params {
    signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    echostr: Option<String>,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

fn required<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, AppError> {
    value.as_deref().ok_or_else(|| {
        AppError::bad_request("parameter", format!("missing query parameter {name}"))
    })
}

/// The query's `signature` over the Token, `timestamp` and `nonce` (docs/wechat.md §2), checked in
/// constant time; returns the signature, timestamp and nonce.
fn signed_query<'p>(
    hook: &Webhook,
    p: &'p Params,
) -> Result<(&'p str, &'p str, &'p str), AppError> {
    let (sig, ts, nonce) = (
        required(&p.signature, "signature")?,
        required(&p.timestamp, "timestamp")?,
        required(&p.nonce, "nonce")?,
    );
    if signature::verify(sig, &[&hook.token, ts, nonce]) {
        Ok((sig, ts, nonce))
    } else {
        Err(AppError::forbidden(
            "signature",
            "signature does not match the configured Token",
        ))
    }
}

/// GET: the URL-verification handshake. The body is `echostr`, exactly.
async fn verify(
    Extension(hook): Extension<Arc<Webhook>>,
    Query(p): Query<Params>,
) -> Result<String, AppError> {
    let echostr = required(&p.echostr, "echostr")?;
    signed_query(&hook, &p)?;
    tracing::info!("URL verification succeeded");
    Ok(echostr.to_owned())
}

/// POST: one message or event.
async fn receive(
    State(state): State<AppState>,
    Extension(hook): Extension<Arc<Webhook>>,
    Query(p): Query<Params>,
    body: Bytes,
) -> Result<Response, AppError> {
    let hook = &*hook;
    let (sig, ts, nonce) = signed_query(hook, &p)?;
    check_clock(ts, hook.max_clock_skew)?;
    let body = std::str::from_utf8(&body)
        .map_err(|_| AppError::bad_request("xml", "the body is not UTF-8"))?;

    let (mut xml, mut crypto) = if p.encrypt_type.as_deref() == Some("aes") {
        let (xml, crypto) = decrypt(hook, &p, ts, nonce, body)?;
        (xml, Some(crypto))
    } else {
        if hook.mode == MessageMode::Safe {
            return Err(AppError::forbidden(
                "mode",
                "safe mode is configured: unencrypted messages are refused",
            ));
        }
        (body.to_owned(), None)
    };
    let mut msg = Inbound::parse(&xml).map_err(|e| AppError::bad_request("xml", e))?;
    if crypto.is_none() && msg.fields.get("Encrypt").is_some() {
        // Compatible mode without `encrypt_type` (dropped on the way, or by someone): the plaintext copy
        // beside <Encrypt> is covered by no signature, so the message is taken from the ciphertext.
        let (decrypted, key) = decrypt(hook, &p, ts, nonce, body)?;
        msg = Inbound::parse(&decrypted).map_err(|e| AppError::bad_request("xml", e))?;
        (xml, crypto) = (decrypted, Some(key));
    }
    let signed = Signed {
        signature: sig.to_ascii_lowercase(),
        at: signed_at(ts, nonce),
        encrypted: crypto.is_some(),
    };
    let reply_xml = handle(&state, hook, msg, xml, signed).await?;

    if reply_xml.is_empty() {
        return Ok("success".into_response());
    }
    let body = match crypto {
        Some(crypto) => {
            let timestamp = unix_now().to_string();
            let nonce = rand::random_range(100_000_000u32..4_000_000_000).to_string();
            let encrypt = crypto.encrypt(&reply_xml);
            let sig = signature::sign(&[&hook.token, &timestamp, &nonce, &encrypt]);
            encrypted_envelope(&encrypt, &sig, &timestamp, &nonce)
        }
        None => reply_xml,
    };
    Ok(([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response())
}

fn check_clock(timestamp: &str, max_skew: Option<Duration>) -> Result<(), AppError> {
    let Some(max_skew) = max_skew else {
        return Ok(());
    };
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| AppError::bad_request("timestamp", "timestamp is not an integer"))?;
    let skew = (unix_now() - ts).unsigned_abs();
    if skew > max_skew.as_secs() {
        return Err(AppError::forbidden(
            "timestamp",
            format!(
                "timestamp is {skew} s away from this server's clock (limit {} s): a replay, or a clock to fix",
                max_skew.as_secs()
            ),
        ));
    }
    Ok(())
}

/// Checks `msg_signature` over the ciphertext and decrypts with the current key, then the previous one.
fn decrypt<'a>(
    hook: &'a Webhook,
    p: &Params,
    ts: &str,
    nonce: &str,
    body: &str,
) -> Result<(String, &'a MessageCrypto), AppError> {
    if hook.keys.is_empty() {
        return Err(AppError::bad_request(
            "mode",
            "an encrypted message arrived but WXPORTAL_ENCODING_AES_KEY is not set",
        ));
    }
    let msg_sig = required(&p.msg_signature, "msg_signature")?;
    let envelope = XmlFields::parse(body).map_err(|e| AppError::bad_request("xml", e))?;
    let encrypt = envelope
        .get("Encrypt")
        .ok_or_else(|| AppError::bad_request("xml", "the encrypted body has no <Encrypt>"))?;
    if !signature::verify(msg_sig, &[&hook.token, ts, nonce, encrypt]) {
        return Err(AppError::forbidden(
            "msg_signature",
            "msg_signature does not match the ciphertext",
        ));
    }
    let mut last_error = None;
    for crypto in &hook.keys {
        match crypto.decrypt(encrypt) {
            Ok(xml) => return Ok((xml, crypto)),
            Err(e) => last_error = Some(e),
        }
    }
    let e = last_error.expect("at least one key was tried");
    let reason = match e {
        crate::wechat::CryptoError::AppId => "appid",
        crate::wechat::CryptoError::Padding | crate::wechat::CryptoError::Length => "padding",
        _ => "decrypt",
    };
    Err(AppError::bad_request(reason, e))
}

/// Handles a message once however many tries arrive: concurrent tries share the first one's answer,
/// later ones (even after a restart) get the stored answer.
async fn handle(
    state: &AppState,
    hook: &Webhook,
    msg: Inbound,
    raw_xml: String,
    signed: Signed,
) -> Result<String, AppError> {
    let key = msg.dedup_key();
    let cell = hook
        .in_flight
        .lock()
        .expect("in-flight map poisoned")
        .entry(key.clone())
        .or_default()
        .clone();
    let result = cell
        .get_or_try_init(|| process(state, &msg, &key, raw_xml, signed))
        .await
        .cloned();
    let mut in_flight = hook.in_flight.lock().expect("in-flight map poisoned");
    if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
        in_flight.remove(&key);
    }
    result
}

/// How a message arrived: the signature of its query, and whether it was encrypted.
#[derive(Debug)]
struct Signed {
    signature: String,
    /// See [`NewMessage::signed_at`].
    at: i64,
    encrypted: bool,
}

/// The later of a signed query's timestamp and nonce as numbers, or 0 if either is not one: the same for
/// the query with the two swapped, which carries the same signature.
fn signed_at(timestamp: &str, nonce: &str) -> i64 {
    match (timestamp.parse::<i64>(), nonce.parse::<i64>()) {
        (Ok(timestamp), Ok(nonce)) => timestamp.max(nonce),
        _ => 0,
    }
}

async fn process(
    state: &AppState,
    msg: &Inbound,
    key: &str,
    raw_xml: String,
    signed: Signed,
) -> Result<String, AppError> {
    // Choosing a reply has no side effects; storing decides, atomically with the side effects, whether
    // this is the first try. A retry (even after a restart, or on another instance) gets the stored reply.
    let now = unix_now();
    let mut jobs = Vec::new();
    let mut ask = None;
    let reply_xml = match tokio::time::timeout(REPLY_DEADLINE, state.replies.reply_to(msg)).await {
        Ok(Some(Answer { slow: true, .. })) => {
            jobs.push((JobKind::Reply, now));
            String::new()
        }
        // The bot is asked once the message is stored; should this process stop before the answer is
        // settled, the late-reply job asks it again once it is due.
        Ok(Some(Answer {
            bot: Some(bot),
            reply,
            ..
        })) => {
            jobs.push((JobKind::Reply, now + BOT_HANDOFF_SECS));
            ask = Some((bot, reply));
            String::new()
        }
        Ok(Some(answer)) => answer.reply.to_xml(&msg.from, &msg.to, now),
        Ok(None) => String::new(),
        Err(_) => {
            tracing::warn!(
                msg_type = msg.msg_type(),
                "reply logic missed its deadline; answering success and replying through the outbox"
            );
            jobs.push((JobKind::Reply, now));
            String::new()
        }
    };
    if matches!(msg.kind, MessageKind::Event(Event::Subscribe { .. }))
        && state.account.credentials.configured()
    {
        jobs.push((JobKind::UserInfo, now));
    }
    let scan = match &msg.kind {
        MessageKind::Event(Event::Subscribe { scene, .. }) => Some(Scan {
            scene: scene.clone(),
            subscribed: true,
        }),
        MessageKind::Event(Event::Scan { scene, .. }) if !scene.is_empty() => Some(Scan {
            scene: Some(scene.clone()),
            subscribed: false,
        }),
        _ => None,
    };
    let template_finished = match &msg.kind {
        MessageKind::Event(Event::TemplateSendJobFinish { msg_id, status }) => {
            Some((msg_id.clone(), status.clone()))
        }
        _ => None,
    };
    let tell = state.subscriptions.event_of(msg);
    let tells = tell.is_some();
    let queues_work = !jobs.is_empty();
    let recorded = state
        .store
        .record_message(NewMessage {
            dedup_key: key.to_owned(),
            openid: msg.from.clone(),
            account: msg.to.clone(),
            msg_type: msg.msg_type().to_owned(),
            event: msg.event_name().map(str::to_owned),
            msg_id: msg.msg_id().map(str::to_owned),
            created_at: msg.create_time,
            received_at: now,
            fields: msg.fields.to_json().to_string(),
            raw_xml,
            reply_xml: reply_xml.clone(),
            encrypted: signed.encrypted,
            signature: Some(signed.signature),
            signed_at: Some(signed.at),
            jobs,
            scan,
            template_finished,
            tell,
        })
        .await?;
    if queues_work {
        state.outbox.wake();
    }
    if tells {
        state.deliverer.wake();
    }
    state.metrics.message(match recorded {
        Recorded::Inserted => MessageOutcome::Stored,
        Recorded::Duplicate { .. } => MessageOutcome::Duplicate,
        Recorded::Replayed => MessageOutcome::Replayed,
    });
    Ok(match recorded {
        Recorded::Inserted if ask.is_some() => {
            let (bot, fallback) = ask.expect("checked");
            // Boxed: its store call is most of this future's size, and every message's future is moved
            // through each layer of the router; only bot-rule messages pay for the allocation.
            Box::pin(ask_bot(state, msg, key, bot, fallback)).await
        }
        Recorded::Inserted => {
            tracing::debug!(
                msg_type = msg.msg_type(),
                event = msg.event_name(),
                replied = !reply_xml.is_empty(),
                "message stored"
            );
            reply_xml
        }
        Recorded::Replayed => {
            return Err(AppError::forbidden(
                "replay",
                "this signed query was already used with another message",
            ));
        }
        Recorded::Duplicate { reply_xml } => {
            tracing::info!(
                msg_type = msg.msg_type(),
                "retry answered with the stored reply"
            );
            reply_xml
        }
    })
}

/// When a bot-rule's late-reply job becomes due: after the budget, the bot's whole timeout and a margin,
/// so it only runs when the process that asked stopped before settling the answer.
const BOT_HANDOFF_SECS: i64 = bot::TIMEOUT.as_secs() as i64 + 10;

/// Asks the rule's bot about the message just stored (its first try) and waits for the budget: the
/// answer (or the fallback, if the bot failed) as the passive reply XML, stored as the message's reply.
/// Past the budget: empty (`success`), and the bot's answer goes out as a customer-service message
/// when it arrives.
async fn ask_bot(
    state: &AppState,
    msg: &Inbound,
    key: &str,
    rule: BotRule,
    fallback: Reply,
) -> String {
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let budget = rule.budget;
    let late = Late {
        store: state.store.clone(),
        outbox: Arc::clone(&state.outbox),
        key: key.to_owned(),
        openid: msg.from.clone(),
        fallback: fallback.clone(),
    };
    {
        let bots = Arc::clone(&state.bots);
        let msg = msg.clone();
        let id = bot::question_id(key);
        let late = late.clone();
        tokio::spawn(async move {
            let answer = bots.ask(&rule, &msg, &id, bot::TIMEOUT).await;
            if let Err(answer) = tx.send(answer) {
                // The budget has passed: the webhook answered `success`.
                late.hand(answer).await;
            }
        });
    }
    let answer = match tokio::time::timeout(budget, &mut rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => return String::new(),
        Err(_) => {
            // Closed first, so that an answer arriving from now on is handed late by the task; one that
            // arrived in between is handed late from here.
            rx.close();
            if let Ok(answer) = rx.try_recv() {
                tokio::spawn(late.hand(answer));
            }
            tracing::info!(
                budget_ms = budget.as_millis() as u64,
                "the bot did not answer within its budget; answering success, its answer goes out later"
            );
            return String::new();
        }
    };
    let reply = match answer {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(error = %e, "the bot failed; answering with the rule's fallback");
            Some(fallback)
        }
    };
    let xml = reply.map_or_else(String::new, |r| r.to_xml(&msg.from, &msg.to, unix_now()));
    match state.store.settle_in_time(key, &xml).await {
        Ok(true) => xml,
        Ok(false) => String::new(),
        Err(e) => {
            // The late-reply job is still queued: it asks the bot again when it is due.
            tracing::error!(error = %e, "recording the bot's answer failed; it will be asked again later");
            String::new()
        }
    }
}

/// What hands a bot's late answer to the outbox.
#[derive(Clone)]
struct Late {
    store: crate::store::Store,
    outbox: Arc<crate::outbox::Outbox>,
    key: String,
    openid: String,
    fallback: Reply,
}

impl Late {
    async fn hand(self, answer: Result<Option<Reply>, bot::BotError>) {
        let reply = match answer {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "the bot failed after its budget; sending the rule's fallback");
                Some(self.fallback.clone())
            }
        };
        let payload = reply
            .as_ref()
            .and_then(|r| crate::upstream::account::custom_message(&self.openid, r))
            .map(|m| m.to_string());
        match self
            .store
            .hand_late_answer(&self.key, payload.as_deref())
            .await
        {
            Ok(_) => self.outbox.wake(),
            Err(e) => {
                tracing::error!(error = %e, "handing the bot's late answer failed; it will be asked again later")
            }
        }
    }
}
