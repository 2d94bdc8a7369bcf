//! Inbound messages with their replies, and the group-commit writer that stores them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{Connection, QueryBuilder, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::endpoints::DeliveryAttempt;
use super::endpoints::QueueEvent;
use super::jobs::Attempt;
use super::{Db, JobKind, NewEvent, Scan, Store, StoreError, on_pool, per_backend};

/// The most messages committed in one transaction (13 bound values each, well under SQLite's limit).
const MAX_BATCH: usize = 256;

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

/// Answers a queued write after its commit.
/// The writer's answer; an error is shared by every message of a batch that failed together.
type Ack = oneshot::Sender<Result<Recorded, Arc<sqlx::Error>>>;

/// Answers a recorded outcome after its commit (for a delivery: whether its endpoint was switched off).
pub(super) type OutcomeAck = oneshot::Sender<Result<bool, Arc<sqlx::Error>>>;

/// What became of an attempt at background work, committed with the messages.
pub(super) enum Outcome {
    /// An outbox job's ([`Store::record_attempt`]).
    Job(Attempt),
    /// An event delivery's ([`Store::record_deliveries`]).
    Delivery(i64, DeliveryAttempt),
}

pub(super) enum WriteJob {
    Message(Box<NewMessage>, Ack),
    /// What became of an outbox job's attempt or an event's delivery.
    Outcome(Outcome, OutcomeAck),
    /// Answered once everything queued before it has been committed.
    Flush(oneshot::Sender<()>),
    /// Sent after a background checkpoint: the writer copies the frames appended meanwhile, so that its
    /// next commit starts the write-ahead log over instead of growing it (see [`checkpoint_tail`]).
    Checkpoint,
}

impl Store {
    /// Stores a message and its reply durably (returns after the commit) and updates its sender's row.
    pub async fn record_message(&self, message: NewMessage) -> Result<Recorded, StoreError> {
        let sqlite = match &self.db {
            Db::Sqlite(sqlite) => sqlite,
            // Concurrent transactions commit together on their own; a conflict on the dedup key waits
            // for the other transaction and then sees its row.
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let mut recorded = postgres::insert_batch(&mut tx, &[&message]).await?;
                tx.commit().await?;
                return Ok(recorded.remove(0));
            }
        };
        let (tx, rx) = oneshot::channel();
        sqlite
            .writer
            .send(WriteJob::Message(Box::new(message), tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match rx.await {
            Ok(Ok(recorded)) => Ok(recorded),
            Ok(Err(e)) => Err(StoreError::Writer(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
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

pub(super) async fn spawn_writer(
    options: SqliteConnectOptions,
    gate: Arc<tokio::sync::Mutex<()>>,
) -> Result<mpsc::Sender<WriteJob>, StoreError> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    let (ready_tx, ready_rx) = oneshot::channel();
    // The writer gets a thread and runtime of its own: as a task among the request handlers, each step of
    // its transaction waited behind HTTP work, and every message waits for the writer.
    std::thread::Builder::new()
        .name("wxportal-writer".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the writer runtime starts");
            runtime.block_on(async move {
                match SqliteConnection::connect_with(&options).await {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        run_writer(conn, rx, gate).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    ready_rx.await.map_err(|_| StoreError::WriterGone)??;
    Ok(tx)
}

async fn run_writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<WriteJob>,
    gate: Arc<tokio::sync::Mutex<()>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut messages = Vec::with_capacity(batch.len());
        let mut attempts = Vec::new();
        let mut flushes = Vec::new();
        let mut checkpoint = false;
        for job in batch.drain(..) {
            match job {
                WriteJob::Message(m, ack) => messages.push((m, ack)),
                WriteJob::Outcome(a, ack) => attempts.push((a, ack)),
                WriteJob::Flush(ack) => flushes.push(ack),
                WriteJob::Checkpoint => checkpoint = true,
            }
        }
        if !messages.is_empty() || !attempts.is_empty() {
            // In turn with this process's other writes, so that neither finds SQLite's lock taken and
            // naps in its busy handler.
            let _turn = gate.lock().await;
            let started = std::time::Instant::now();
            match commit_batch(&mut conn, &messages, &attempts).await {
                Ok((results, outcomes)) => {
                    tracing::debug!(
                        messages = results.len(),
                        attempts = attempts.len(),
                        micros = started.elapsed().as_micros() as u64,
                        "batch committed"
                    );
                    for ((_, ack), result) in messages.into_iter().zip(results) {
                        let _ = ack.send(Ok(result));
                    }
                    for ((_, ack), outcome) in attempts.into_iter().zip(outcomes) {
                        let _ = ack.send(Ok(outcome));
                    }
                }
                Err(e) if messages.len() + attempts.len() > 1 => {
                    // One write the database refuses must not fail the others committed with it: each
                    // is tried alone, and only the refused ones get the error.
                    tracing::warn!(error = %e, messages = messages.len(), attempts = attempts.len(), "a batch failed; storing its writes one by one");
                    for message in messages {
                        let single = [message];
                        let result = commit_batch(&mut conn, &single, &[]).await;
                        let [(m, ack)] = single;
                        match result {
                            Ok((mut results, _)) => {
                                let _ = ack.send(Ok(results.remove(0)));
                            }
                            Err(e) => {
                                tracing::error!(error = %e, msg_type = m.msg_type, "storing a message failed");
                                let _ = ack.send(Err(Arc::new(e)));
                            }
                        }
                    }
                    for attempt in attempts {
                        let single = [attempt];
                        let result = commit_batch(&mut conn, &[], &single).await;
                        let [(_, ack)] = single;
                        let _ = ack.send(
                            result
                                .map(|(_, outcomes)| outcomes.first().copied().unwrap_or(false))
                                .map_err(Arc::new),
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "storing a batch failed");
                    let e = Arc::new(e);
                    for (_, ack) in messages {
                        let _ = ack.send(Err(Arc::clone(&e)));
                    }
                    for (_, ack) in attempts {
                        let _ = ack.send(Err(Arc::clone(&e)));
                    }
                }
            }
        }
        for ack in flushes {
            let _ = ack.send(());
        }
        if checkpoint {
            checkpoint_tail(&mut conn).await;
        }
    }
    let _ = conn.close().await;
}

/// Copies into the database file what the background checkpoint left in the write-ahead log.
///
/// SQLite starts the log over only when a write begins with every frame already copied. Under a steady
/// stream of messages a checkpoint on another connection never catches up with the writer, so the log
/// grew without end (700 MB in 16 seconds of benchmark load) and every commit paid for extending the
/// file. The background checkpoint does the bulk of the copying away from the messages' path; the
/// writer then copies only the frames appended meanwhile, between two batches.
async fn checkpoint_tail(conn: &mut SqliteConnection) {
    let started = std::time::Instant::now();
    match checkpoint(&mut *conn).await {
        Ok((frames, copied)) => tracing::debug!(
            frames,
            copied,
            micros = started.elapsed().as_micros() as u64,
            "writer checkpoint"
        ),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    messages: &[(Box<NewMessage>, Ack)],
    attempts: &[(Outcome, OutcomeAck)],
) -> Result<(Vec<Recorded>, Vec<bool>), sqlx::Error> {
    // Jobs must be queued in the messages' commit (a crash between the two would lose them); without
    // jobs or attempts the one multi-row statement below is atomic on its own and needs no transaction
    // around it.
    let messages: Vec<&NewMessage> = messages.iter().map(|(m, _)| &**m).collect();
    if attempts.is_empty()
        && messages
            .iter()
            .all(|m| m.jobs.is_empty() && m.tell.is_none())
    {
        return Ok((sqlite::insert_batch(conn, &messages).await?, Vec::new()));
    }
    let mut tx = conn.begin().await?;
    let recorded = if messages.is_empty() {
        Vec::new()
    } else {
        sqlite::insert_batch(&mut tx, &messages).await?
    };
    let mut outcomes = Vec::with_capacity(attempts.len());
    for (outcome, _) in attempts {
        outcomes.push(match outcome {
            Outcome::Job(attempt) => {
                super::jobs::sqlite::record_attempt(&mut tx, attempt).await?;
                false
            }
            Outcome::Delivery(endpoint, attempt) => {
                super::endpoints::sqlite::record_delivery(&mut tx, *endpoint, attempt).await?
            }
        });
    }
    tx.commit().await?;
    Ok((recorded, outcomes))
}

per_backend! {
pub(super) async fn insert_batch(
    conn: &mut <Db as sqlx::Database>::Connection,
    messages: &[&NewMessage],
) -> Result<Vec<Recorded>, sqlx::Error> {
    // The unique dedup key decides which messages are new, and the messages_touch_sender trigger updates
    // their senders in the same statement.
    let mut insert = QueryBuilder::<Db>::new(
        "INSERT INTO messages (dedup_key, openid, account, msg_type, event, msg_id, created_at, received_at, \
         fields, raw_xml, reply_xml, encrypted, signature) ",
    );
    insert.push_values(messages, |mut row, m| {
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
            .push_bind(&m.signature);
    });
    // A conflict on the dedup key is a retry; one on the signature, a replay: both insert nothing.
    insert.push(" ON CONFLICT DO NOTHING RETURNING dedup_key, id");
    let inserted: HashMap<String, i64> = insert
        .build_query_as::<(String, i64)>()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();

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

/// Copies the write-ahead log into the database once a second, without blocking the writer, then has
/// the writer copy what was appended meanwhile, so the log starts over ([`checkpoint_tail`]).
/// The writer handle is weak: this task must not keep the writer running once the store is dropped.
pub(super) async fn checkpoint_regularly(pool: SqlitePool, writer: mpsc::WeakSender<WriteJob>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_frames = 0;
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match catch_up(&pool).await {
            // The log is empty, or unchanged since the last tick: all of it is copied already.
            Ok(frames) if frames == 0 || frames == last_frames => last_frames = frames,
            // A full queue means a busy writer; the next tick asks again.
            Ok(frames) => {
                last_frames = frames;
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                let _ = writer.try_send(WriteJob::Checkpoint);
            }
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    }
}

/// Copies the log in passes until a pass finds little new, and returns the log's length. Each pass
/// copies what the writer appended during the one before, so what is left for the writer to copy (while
/// every message waits) shrinks from what was appended during a long pass to a few milliseconds of writes.
async fn catch_up(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    /// Frames appended during the last pass below which the rest is left to the writer.
    const SMALL_TAIL: i64 = 512;
    let mut frames = 0;
    for pass in 0..5 {
        let started = std::time::Instant::now();
        let (now, copied) = checkpoint(pool).await?;
        tracing::debug!(
            pass,
            frames = now,
            copied,
            micros = started.elapsed().as_micros() as u64,
            "background checkpoint"
        );
        // An empty log needs nothing more; a log that started over is shorter than before, and nothing
        // is left behind either.
        let appended = now - frames;
        frames = now;
        if now == 0 || (pass > 0 && appended <= SMALL_TAIL) {
            break;
        }
    }
    Ok(frames)
}

/// Copies the write-ahead log into the database file as far as no reader needs it, without waiting for
/// anyone. Returns the log's length and how much of it is now copied, in frames.
async fn checkpoint<'e>(conn: impl sqlx::SqliteExecutor<'e>) -> Result<(i64, i64), sqlx::Error> {
    let (_busy, frames, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await?;
    Ok((frames, copied))
}
