//! Inbound messages with their replies, and the group-commit writer that stores them.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, users};

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 256;

/// An inbound message to store, with the reply computed for it.
#[derive(Debug, Clone)]
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
    /// `Some(true)` for subscribe, `Some(false)` for unsubscribe.
    pub subscribes: Option<bool>,
}

/// What happened to a message handed to [`Store::record_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now; the follower's row is updated.
    Inserted,
    /// Already stored (a retry that raced another instance or predates a restart): its reply is returned.
    Duplicate { reply_xml: String },
}

/// A stored message, as the admin area and tests read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRecord {
    pub id: i64,
    pub dedup_key: String,
    pub openid: String,
    pub account: String,
    pub msg_type: String,
    pub event: Option<String>,
    pub msg_id: Option<String>,
    pub created_at: i64,
    pub received_at: i64,
    pub fields: String,
    pub raw_xml: String,
    pub reply_xml: String,
    pub encrypted: bool,
}

/// Answers a queued write after its commit.
type Ack = oneshot::Sender<Result<Recorded, String>>;

pub(super) enum WriteJob {
    Message(Box<NewMessage>, Ack),
    /// Answered once everything queued before it has been committed.
    Flush(oneshot::Sender<()>),
}

impl Store {
    /// The stored reply for a dedup key, if that message was already handled.
    pub async fn stored_reply(&self, dedup_key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT reply_xml FROM messages WHERE dedup_key = ?")
                .bind(dedup_key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a message and its reply durably (returns after the commit) and updates its sender's row.
    pub async fn record_message(&self, message: NewMessage) -> Result<Recorded, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(WriteJob::Message(Box::new(message), tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match rx.await {
            Ok(Ok(recorded)) => Ok(recorded),
            Ok(Err(e)) => Err(StoreError::Database(sqlx::Error::Protocol(e))),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// The newest messages first, at most `limit`.
    pub async fn recent_messages(&self, limit: i64) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM messages ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// How many messages are stored.
    pub async fn count_messages(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM messages")
            .fetch_one(&self.pool)
            .await?)
    }
}

pub(super) async fn spawn_writer(
    options: SqliteConnectOptions,
) -> Result<mpsc::Sender<WriteJob>, StoreError> {
    let conn = SqliteConnection::connect_with(&options).await?;
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    tokio::spawn(run_writer(conn, rx));
    Ok(tx)
}

async fn run_writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<WriteJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut messages = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for job in batch.drain(..) {
            match job {
                WriteJob::Message(m, ack) => messages.push((m, ack)),
                WriteJob::Flush(ack) => flushes.push(ack),
            }
        }
        if !messages.is_empty() {
            match commit_batch(&mut conn, &messages).await {
                Ok(results) => {
                    for ((_, ack), result) in messages.into_iter().zip(results) {
                        let _ = ack.send(Ok(result));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, count = messages.len(), "storing a batch of messages failed");
                    for (_, ack) in messages {
                        let _ = ack.send(Err(e.to_string()));
                    }
                }
            }
        }
        for ack in flushes {
            let _ = ack.send(());
        }
    }
    let _ = conn.close().await;
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    messages: &[(Box<NewMessage>, Ack)],
) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut results = Vec::with_capacity(messages.len());
    for (m, _) in messages {
        let inserted = sqlx::query(
            "INSERT INTO messages (dedup_key, openid, account, msg_type, event, msg_id, created_at, received_at, \
             fields, raw_xml, reply_xml, encrypted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(&m.dedup_key)
        .bind(&m.openid)
        .bind(&m.account)
        .bind(&m.msg_type)
        .bind(&m.event)
        .bind(&m.msg_id)
        .bind(m.created_at)
        .bind(m.received_at)
        .bind(&m.fields)
        .bind(&m.raw_xml)
        .bind(&m.reply_xml)
        .bind(m.encrypted)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            users::touch(
                &mut tx,
                &m.openid,
                m.received_at,
                m.subscribes,
                m.created_at,
            )
            .await?;
            results.push(Recorded::Inserted);
        } else {
            let reply_xml =
                sqlx::query_scalar("SELECT reply_xml FROM messages WHERE dedup_key = ?")
                    .bind(&m.dedup_key)
                    .fetch_one(&mut *tx)
                    .await?;
            results.push(Recorded::Duplicate { reply_xml });
        }
    }
    tx.commit().await?;
    Ok(results)
}
