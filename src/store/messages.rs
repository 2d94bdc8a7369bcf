//! Inbound messages with their replies: stored by the group-commit writer ([`super::writer`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::QueryBuilder;

use super::endpoints::QueueEvent;
use super::{Dialect, JobKind, NewEvent, Scan, Store, StoreError, on_pool, per_backend};

/// An inbound message to store, with the reply computed for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewMessage {
    pub dedup_key: String,
    pub openid: String,
    pub account: String,
    pub msg_type: String,
    pub event: Option<String>,
    pub msg_id: Option<String>,
    pub created_at: i64,
    pub received_at: i64,
    /// The XML fields as a JSON object.
    pub fields: String,
    pub raw_xml: String,
    /// The plaintext reply XML, or empty for `success`.
    pub reply_xml: String,
    pub encrypted: bool,
    /// The signature of the query it came with (lowercase hex): accepted with this message only.
    pub signature: Option<String>,
    /// With the signature, the key of that record: the later of the query's timestamp and nonce, read as
    /// numbers (0 if either is not one). Swapping the two keeps the signature (it signs them sorted), and
    /// keeps this too; for WeChat's queries it is the timestamp, so the record grows at its end.
    pub signed_at: Option<i64>,
    /// Outbox jobs queued in the same commit, if this try is the first: each kind and when it is due.
    #[sqlx(skip)]
    pub jobs: Vec<(JobKind, i64)>,
    /// A subscribe or a scan of a code with a scene, recorded in the same commit.
    #[sqlx(skip)]
    pub scan: Option<Scan>,
    /// TEMPLATESENDJOBFINISH's (msgid, status): set on the template send it names, in the same commit.
    #[sqlx(skip)]
    pub template_finished: Option<(String, String)>,
    /// The event to tell the account's endpoints of, queued in the same commit if this try is the first
    /// (its `data.message_id` is filled in then).
    #[sqlx(skip)]
    pub tell: Option<NewEvent>,
}

/// What happened to a message handed to [`Store::record_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now; the follower's row is updated.
    Inserted,
    /// Already stored (a retry that raced another instance or predates a restart): its reply is returned.
    Duplicate { reply_xml: String },
    /// Its signed query was already used with another message: a replay, refused.
    Replayed,
}

/// A stored message, as the admin area and tests read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRecord {
    pub id: i64,
    #[sqlx(flatten)]
    pub message: NewMessage,
}

impl Store {
    /// Stores a message and its reply durably (returns after the commit) and updates its sender's row.
    pub async fn record_message(&self, message: NewMessage) -> Result<Recorded, StoreError> {
        self.writer.message(message).await
    }

    /// The newest messages first, at most `limit`.
    pub async fn recent_messages(&self, limit: i64) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM messages ORDER BY id DESC LIMIT $1"
        )
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// How many messages are stored.
    pub async fn count_messages(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM messages"
        )
        .fetch_one(pool)
        .await?))
    }
}

/// How far (in seconds) a sender's `last_seen_at` may lag behind their newest message: a follower's row
/// is rewritten for a message only when it moves the time on by this much (or changes their subscription).
/// Each rewrite of a row (and of its place in the last-seen index) is two pages of the write-ahead log
/// at a random place; a conversation of many messages now rewrites it once a minute.
const LAST_SEEN_STEP: i64 = 60;

per_backend! {
/// Brings the senders of the messages just inserted up to date, one row per sender in one statement: seen
/// now (to within [`LAST_SEEN_STEP`]), and (un)subscribed by the newest such event, unless a newer one
/// (by WeChat's CreateTime) already set their state. Only a follower can send messages, so a first
/// message means subscribed. `rows` are in the insert's order: of two events with one CreateTime, the
/// later decides.
///
/// A sender seen less than [`LAST_SEEN_STEP`] ago, with no (un)subscribe, is left out before the upsert:
/// on PostgreSQL an upsert that finds nothing to change still locks the row it conflicts with (a record
/// in the write-ahead log, and a wait behind any transaction holding the row, another instance's batch
/// included). Left out, their message reads the row and moves on.
///
/// (A trigger did this per message; on PostgreSQL it was more than half the database's CPU per message.)
async fn touch_senders(
    conn: &mut <Db as sqlx::Database>::Connection,
    rows: &[&NewMessage],
    inserted: &HashMap<String, i64>,
) -> Result<(), sqlx::Error> {
    struct Sender {
        first_seen: i64,
        last_seen: i64,
        /// The newest (un)subscribe: when, and whether it subscribed.
        change: Option<(i64, bool)>,
    }
    let mut senders: BTreeMap<&str, Sender> = BTreeMap::new();
    let mut counted = HashSet::new();
    for m in rows {
        if !inserted.contains_key(&m.dedup_key) || !counted.insert(m.dedup_key.as_str()) {
            continue;
        }
        let sender = senders.entry(&m.openid).or_insert(Sender {
            first_seen: m.received_at,
            last_seen: m.received_at,
            change: None,
        });
        sender.first_seen = sender.first_seen.min(m.received_at);
        sender.last_seen = sender.last_seen.max(m.received_at);
        let event = m.event.as_deref().unwrap_or_default();
        if m.msg_type == "event"
            && (event.eq_ignore_ascii_case("subscribe") || event.eq_ignore_ascii_case("unsubscribe"))
            && sender.change.is_none_or(|(at, _)| m.created_at >= at)
        {
            sender.change = Some((m.created_at, event.eq_ignore_ascii_case("subscribe")));
        }
    }
    if senders.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<Db>::new(
        "WITH seen (openid, subscribed, subscription_changed_at, first_seen_at, last_seen_at) AS (",
    );
    // By OpenID: every instance locks senders' rows in one order.
    upsert.push_values(&senders, |mut row, (openid, sender)| {
        row.push_bind(*openid)
            .push_bind(sender.change.is_none_or(|(_, subscribed)| subscribed))
            .push_bind(sender.change.map(|(at, _)| at))
            .push_bind(sender.first_seen)
            .push_bind(sender.last_seen);
    });
    upsert.push(
        ") INSERT INTO users (openid, subscribed, subscription_changed_at, first_seen_at, last_seen_at)
         SELECT * FROM seen WHERE seen.subscription_changed_at IS NOT NULL OR NOT EXISTS (
             SELECT 1 FROM users WHERE users.openid = seen.openid AND seen.last_seen_at < users.last_seen_at + ",
    );
    upsert.push(LAST_SEEN_STEP);
    upsert.push(
        // The conflict's own test is still needed: another instance may have written the row since
        // this statement's snapshot was taken.
        ") ORDER BY seen.openid ON CONFLICT (openid) DO UPDATE SET
            last_seen_at = CASE WHEN excluded.last_seen_at > users.last_seen_at
                           THEN excluded.last_seen_at ELSE users.last_seen_at END,
            subscribed = CASE WHEN excluded.subscription_changed_at >= coalesce(users.subscription_changed_at, 0)
                         THEN excluded.subscribed ELSE users.subscribed END,
            subscription_changed_at = CASE WHEN excluded.subscription_changed_at >= coalesce(users.subscription_changed_at, 0)
                         THEN excluded.subscription_changed_at ELSE users.subscription_changed_at END
         WHERE excluded.subscription_changed_at IS NOT NULL
            OR excluded.last_seen_at >= users.last_seen_at + ",
    );
    upsert.push(LAST_SEEN_STEP);
    upsert.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts a batch of messages with their side effects, inside the caller's transaction.
pub(in crate::store) async fn insert_batch(
    conn: &mut <Db as sqlx::Database>::Connection,
    messages: &[&NewMessage],
) -> Result<Vec<Recorded>, sqlx::Error> {
    // The unique dedup key decides which messages are new; their senders are updated next.
    let mut insert = QueryBuilder::<Db>::new(format!(
        "{} messages (dedup_key, openid, account, msg_type, event, msg_id, created_at, received_at, \
         fields, raw_xml, reply_xml, encrypted, signature, signed_at) ",
        <Db as Dialect>::INSERT_SKIPPING_CONFLICTS.0
    ));
    // In one order on every instance (by sender, then key), so that two instances' batches take the
    // same rows' locks in the same order and never wait for each other in a cycle (a stable sort: of two
    // tries of one message in a batch, the first is still the one stored).
    let mut rows = messages.to_vec();
    rows.sort_by(|a, b| (&a.openid, &a.dedup_key).cmp(&(&b.openid, &b.dedup_key)));
    insert.push_values(&rows, |mut row, m| {
        row.push_bind(&m.dedup_key)
            .push_bind(&m.openid)
            .push_bind(&m.account)
            .push_bind(&m.msg_type)
            .push_bind(&m.event)
            .push_bind(&m.msg_id)
            .push_bind(m.created_at)
            .push_bind(m.received_at)
            .push_bind(&m.fields)
            .push_bind(&m.raw_xml)
            .push_bind(&m.reply_xml)
            .push_bind(m.encrypted)
            .push_bind(&m.signature)
            .push_bind(m.signed_at);
    });
    // A conflict on the dedup key is a retry; one on the signed query, a replay: both insert nothing.
    insert.push(<Db as Dialect>::INSERT_SKIPPING_CONFLICTS.1);
    insert.push(" RETURNING dedup_key, id");
    let inserted: HashMap<String, i64> = insert
        .build_query_as::<(String, i64)>()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    touch_senders(conn, &rows, &inserted).await?;

    // A key twice in one batch was inserted once, and so are its side effects.
    let mut done = HashSet::new();
    let mut events = Vec::new();
    for m in messages {
        let Some(&id) = inserted.get(&m.dedup_key) else {
            continue;
        };
        if !done.insert(m.dedup_key.as_str()) {
            continue;
        }
        if let Some(scan) = &m.scan {
            if let Some(scene) = &scan.scene {
                sqlx::query(
                    "INSERT INTO qr_scans (scene, openid, subscribed, at) VALUES ($1, $2, $3, $4)",
                )
                .bind(scene)
                .bind(&m.openid)
                .bind(scan.subscribed)
                .bind(m.received_at)
                .execute(&mut *conn)
                .await?;
            }
            // Where the follower came from, unless a newer (un)subscribe already changed their state.
            if scan.subscribed {
                sqlx::query(
                    "UPDATE users SET qr_scene = $1 WHERE openid = $2 AND subscription_changed_at = $3",
                )
                .bind(&scan.scene)
                .bind(&m.openid)
                .bind(m.created_at)
                .execute(&mut *conn)
                .await?;
            }
        }
        if let Some((msgid, status)) = &m.template_finished {
            sqlx::query("UPDATE outbox SET delivery = $1 WHERE msgid = $2 AND kind = 'template'")
                .bind(status)
                .bind(msgid)
                .execute(&mut *conn)
                .await?;
        }
        if let Some(event) = &m.tell {
            let mut event = event.clone();
            event.data["message_id"] = id.into();
            events.push((event, m.received_at));
        }
        for (kind, due_at) in &m.jobs {
            sqlx::query(
                "INSERT INTO outbox (kind, openid, message_id, due_at, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(kind)
            .bind(&m.openid)
            .bind(id)
            .bind(due_at)
            .bind(m.received_at)
            .execute(&mut *conn)
            .await?;
        }
    }

    conn.queue_events(&events).await?;

    let duplicates: Vec<&str> = messages
        .iter()
        .map(|m| m.dedup_key.as_str())
        .filter(|k| !inserted.contains_key(*k))
        .collect();
    let mut stored: HashMap<String, Stored> = HashMap::new();
    if !duplicates.is_empty() {
        let mut select = QueryBuilder::<Db>::new(
            "SELECT dedup_key, reply_xml, raw_xml, signature FROM messages WHERE dedup_key IN (",
        );
        let mut keys = select.separated(", ");
        for k in &duplicates {
            keys.push_bind(*k);
        }
        select.push(")");
        stored = select
            .build_query_as::<Stored>()
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|s| (s.dedup_key.clone(), s))
            .collect();
    }

    // Two tries of one message in the same batch: the first is the one stored.
    let mut claimed = HashSet::new();
    Ok(messages
        .iter()
        .map(|m| {
            if inserted.contains_key(&m.dedup_key) && claimed.insert(m.dedup_key.as_str()) {
                return Recorded::Inserted;
            }
            if let Some(first) = stored.get(&m.dedup_key) {
                // The same query with another body under the same message id is no retry either.
                let same_query = first.signature.is_some() && first.signature == m.signature;
                return if same_query && first.raw_xml != m.raw_xml {
                    Recorded::Replayed
                } else {
                    Recorded::Duplicate {
                        reply_xml: first.reply_xml.clone(),
                    }
                };
            }
            match messages.iter().find(|other| {
                other.dedup_key == m.dedup_key && inserted.contains_key(&other.dedup_key)
            }) {
                Some(first)
                    if first.signature != m.signature || first.raw_xml == m.raw_xml =>
                {
                    Recorded::Duplicate {
                        reply_xml: first.reply_xml.clone(),
                    }
                }
                // Not stored under its own key: its signature is another message's.
                _ => Recorded::Replayed,
            }
        })
        .collect())
}

/// What a retry is compared with.
#[derive(sqlx::FromRow)]
struct Stored {
    dedup_key: String,
    reply_xml: String,
    raw_xml: String,
    signature: Option<String>,
}
}

/// Which messages the list shows: newest first, before `before` (an id).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub msg_type: Option<String>,
    pub event: Option<String>,
    pub openid: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// One page of messages, newest first.
    pub async fn list_messages(&self, q: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut sql = QueryBuilder::new("SELECT * FROM messages WHERE 1 = 1");
            if let Some(t) = &q.msg_type {
                sql.push(" AND msg_type = ").push_bind(t);
            }
            if let Some(e) = &q.event {
                sql.push(" AND event = ").push_bind(e);
            }
            if let Some(o) = &q.openid {
                sql.push(" AND openid = ").push_bind(o);
            }
            if let Some(before) = q.before {
                sql.push(" AND id < ").push_bind(before);
            }
            sql.push(" ORDER BY id DESC LIMIT ").push_bind(q.limit);
            sql.build_query_as().fetch_all(pool).await?
        }))
    }

    /// When `openid` last did something that opens the 48-hour window for customer-service messages
    /// (docs/wechat.md §9): any message, or a subscribe, a code scan or a menu click that pushes an event.
    pub(crate) async fn last_interaction(&self, openid: &str) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT max(received_at) FROM messages WHERE openid = $1
               AND (msg_type <> 'event'
                    OR lower(event) IN ('subscribe', 'scan', 'click', 'scancode_push', 'scancode_waitmsg'))",
        )
        .bind(openid)
        .fetch_one(pool)
        .await?
        }))
    }

    pub async fn message(&self, id: i64) -> Result<Option<MessageRecord>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM messages WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }
}
