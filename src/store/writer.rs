//! The group-commit writer: one task per process with connections of its own, which commits the
//! messages (and the other writes of busy paths: outcomes of background attempts, sign-ins, sessions)
//! that arrive while it commits the previous group, all in one transaction. Each caller is answered after
//! the commit that holds its write.
//!
//! Both backends write this way. On SQLite it is how one write lock is shared without naps in the busy
//! handler, and without callers queueing for it one commit (and one sync) at a time; on PostgreSQL, one
//! transaction per message made every message pay for a commit (a sync of the log), and a process stored
//! about a third of SQLite's messages per second. On PostgreSQL the writer has [`POSTGRES_WRITERS`]
//! connections and commits a batch on each side by side, as the writers of two instances do (the same
//! lock order keeps them from waiting on each other in a cycle): one batch's statements run while the
//! other's commit is synced. One connection kept the database's share of the work to one core, and the
//! writer waited for each sync in turn.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot};

use super::endpoints::DeliveryAttempt;
use super::jobs::Attempt;
use super::oauth::OAuthState;
use super::sessions::SessionWrite;
use super::users::Authorization;
use super::{NewMessage, Recorded, StoreError};

/// The most messages committed in one transaction (14 bound values each, well under either backend's
/// limit on bound values).
pub(super) const MAX_BATCH: usize = 256;

/// The writer's answer; an error is shared by every write of a batch that failed together.
type Ack = oneshot::Sender<Result<Recorded, Arc<sqlx::Error>>>;

/// The writer's connections on PostgreSQL, each committing a batch at a time. Two stored about 14% more
/// messages per second than one on a 2-core machine (`bench/postgres.sh`, alternating runs), at about a
/// third more database CPU per message (smaller batches).
const POSTGRES_WRITERS: usize = 2;

/// Answers a write after its commit with the count its [`Op`] variant defines.
type OpAck = oneshot::Sender<Result<u64, Arc<sqlx::Error>>>;

/// A write other than a message, committed with the messages; each is answered with a count.
pub(super) enum Op {
    /// What became of an outbox job's attempt ([`super::Store::record_attempt`]); 0.
    Job(Attempt),
    /// What became of an event delivery ([`super::Store::record_deliveries`]); 1 when its endpoint was
    /// switched off by it.
    Delivery(i64, DeliveryAttempt),
    /// An authorization state claimed for a code ([`super::Store::claim_oauth_state`]); 1 when this
    /// claim stored it.
    Claim(Box<OAuthState>),
    /// A finished authorization ([`super::Store::save_authorization`]); 0.
    Authorization(Box<Authorization>),
    /// A session row written or deleted ([`super::SessionRows`]); the rows it changed.
    Session(SessionWrite),
}

pub(super) enum WriteJob {
    Message(Box<NewMessage>, Ack),
    Op(Op, OpAck),
    /// Answered once everything queued before it has been committed.
    Flush(oneshot::Sender<()>),
    /// Sent after a background checkpoint (SQLite): the writer copies the frames appended meanwhile, so
    /// that its next commit starts the write-ahead log over instead of growing it (see
    /// [`checkpoint_tail`]).
    Checkpoint,
}

/// The handle every part of the store writes messages and the other grouped writes ([`Op`]) through.
#[derive(Clone, Debug)]
pub(super) struct Writer(mpsc::Sender<WriteJob>);

/// Where the writer commits.
pub(super) enum Target {
    Sqlite {
        options: SqliteConnectOptions,
        /// This process's write turn ([`super::Store::write_turn`]), taken for each commit.
        gate: Arc<tokio::sync::Mutex<()>>,
        /// With `synchronous=FULL`: the write-ahead log, synced by the writer's [`LogSync`] after each
        /// commit instead of by SQLite within it.
        log: Option<PathBuf>,
    },
    Postgres(PgConnectOptions),
}

enum Conn {
    Sqlite {
        conn: SqliteConnection,
        gate: Arc<tokio::sync::Mutex<()>>,
        log: Option<LogSync>,
    },
    Postgres {
        conn: Box<PgConnection>,
        options: Box<PgConnectOptions>,
    },
}

impl Writer {
    /// Connects and starts the writer on a thread of its own: as a task among the request handlers,
    /// each step of its transaction waited behind HTTP work, and every message waits for the writer.
    pub(super) async fn spawn(target: Target) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("wxportal-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the writer runtime starts");
                runtime.block_on(async move {
                    match Conn::open_all(target).await {
                        Ok(conns) => {
                            let _ = ready_tx.send(Ok(()));
                            run(conns, rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        ready_rx.await.map_err(|_| StoreError::WriterGone)??;
        Ok(Self(tx))
    }

    /// Stores a message and returns once it is committed.
    pub(super) async fn message(&self, message: NewMessage) -> Result<Recorded, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(WriteJob::Message(Box::new(message), tx)).await?;
        answer(rx.await)
    }

    /// Commits a write (with whatever else the writer holds) and returns its count.
    pub(super) async fn op(&self, op: Op) -> Result<u64, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(WriteJob::Op(op, tx)).await?;
        answer(rx.await)
    }

    /// Commits writes, together as far as the writer's batches allow, and returns their counts.
    pub(super) async fn ops(&self, ops: Vec<Op>) -> Result<Vec<u64>, StoreError> {
        let mut acks = Vec::with_capacity(ops.len());
        for op in ops {
            let (tx, rx) = oneshot::channel();
            self.send(WriteJob::Op(op, tx)).await?;
            acks.push(rx);
        }
        let mut answers = Vec::with_capacity(acks.len());
        for rx in acks {
            answers.push(answer(rx.await)?);
        }
        Ok(answers)
    }

    /// Waits until everything queued so far is committed.
    pub(super) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(WriteJob::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    pub(super) fn downgrade(&self) -> mpsc::WeakSender<WriteJob> {
        self.0.downgrade()
    }

    async fn send(&self, job: WriteJob) -> Result<(), StoreError> {
        self.0.send(job).await.map_err(|_| StoreError::WriterGone)
    }
}

fn answer<T>(
    received: Result<Result<T, Arc<sqlx::Error>>, oneshot::error::RecvError>,
) -> Result<T, StoreError> {
    match received {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::Writer(e)),
        Err(_) => Err(StoreError::WriterGone),
    }
}

impl Conn {
    /// The writer's connections: one on SQLite (which has one write lock), [`POSTGRES_WRITERS`] on
    /// PostgreSQL.
    async fn open_all(target: Target) -> Result<Vec<Self>, sqlx::Error> {
        match target {
            Target::Postgres(options) => {
                let mut conns = Vec::with_capacity(POSTGRES_WRITERS);
                for _ in 0..POSTGRES_WRITERS {
                    conns.push(Self::open(Target::Postgres(options.clone())).await?);
                }
                Ok(conns)
            }
            sqlite => Ok(vec![Self::open(sqlite).await?]),
        }
    }

    async fn open(target: Target) -> Result<Self, sqlx::Error> {
        Ok(match target {
            Target::Sqlite { options, gate, log } => {
                // With a log to sync, the commit itself only writes it; the sync follows on the log's
                // own thread.
                let options = match log {
                    Some(_) => options.synchronous(SqliteSynchronous::Normal),
                    None => options,
                };
                Self::Sqlite {
                    conn: options.connect().await?,
                    gate,
                    log: log.map(LogSync::spawn).transpose()?,
                }
            }
            Target::Postgres(options) => {
                // Named, for pg_stat_activity (and for the test that cuts its connection).
                let options = options.application_name("wxportal writer");
                Self::Postgres {
                    conn: Box::new(options.connect().await?),
                    options: Box::new(options),
                }
            }
        })
    }

    async fn commit(
        &mut self,
        messages: &[(Box<NewMessage>, Ack)],
        ops: &[(Op, OpAck)],
    ) -> Result<(Vec<Recorded>, Vec<u64>), sqlx::Error> {
        let messages: Vec<&NewMessage> = messages.iter().map(|(m, _)| &**m).collect();
        let ops: Vec<&Op> = ops.iter().map(|(op, _)| op).collect();
        match self {
            Self::Sqlite { conn, gate, .. } => {
                // In turn with this process's other writes, so that neither finds SQLite's lock taken
                // and naps in its busy handler.
                let _turn = gate.lock().await;
                sqlite::commit_batch(conn, &messages, &ops).await
            }
            Self::Postgres { conn, .. } => postgres::commit_batch(conn, &messages, &ops).await,
        }
    }

    /// After a failed commit: whether the connection was lost and is now replaced by a new one (the
    /// commit is worth trying again). While the database cannot be reached, each batch is answered with
    /// the error at once (nobody waits on a writer that cannot write) and the next one tries again.
    async fn reconnect_if_lost(&mut self) -> bool {
        // SQLite's file does not go away; its errors are the statements'.
        let Self::Postgres { conn, options } = self else {
            return false;
        };
        if conn.ping().await.is_ok() {
            return false;
        }
        match options.connect().await {
            Ok(fresh) => {
                tracing::info!("the message writer reconnected to the database");
                **conn = fresh;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the message writer cannot reach the database");
                false
            }
        }
    }

    /// Hands a batch's answers to their callers once what the batch committed is durable: at once, or
    /// (SQLite with `synchronous=FULL`) after the log's next sync.
    fn answer(&self, answers: Answers) {
        match self {
            Self::Sqlite { log: Some(log), .. } => log.answer_after_sync(answers),
            _ => answers.send(None),
        }
    }

    async fn close(self) {
        let _ = match self {
            Self::Sqlite { conn, .. } => conn.close().await,
            Self::Postgres { conn, .. } => conn.close().await,
        };
    }
}

/// Takes what is queued, up to [`MAX_BATCH`] jobs, as a batch for a free connection: with one
/// connection (SQLite) each batch is what arrived while the last one committed; with several
/// (PostgreSQL) batches commit side by side, as two instances' writers do, so that one batch's
/// statements run while another's commit is synced.
async fn run(conns: Vec<Conn>, mut rx: mpsc::Receiver<WriteJob>) {
    // In turn, so that every connection is used (and one the database closed is replaced) under light
    // load too.
    let mut idle = std::collections::VecDeque::from(conns);
    let mut busy = FuturesUnordered::new();
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            Some(conn) = busy.next() => idle.push_back(conn),
            received = rx.recv_many(&mut batch, MAX_BATCH), if !idle.is_empty() => {
                if received == 0 {
                    break;
                }
                // A flush is answered once everything queued before it is committed: the batches
                // still committing on other connections first.
                if batch.iter().any(|job| matches!(job, WriteJob::Flush(_))) {
                    while let Some(conn) = busy.next().await {
                        idle.push_back(conn);
                    }
                }
                let conn = idle.pop_front().expect("a connection is free");
                busy.push(commit_batch(conn, batch));
            }
        }
    }
    while let Some(conn) = busy.next().await {
        idle.push_back(conn);
    }
    for conn in idle {
        conn.close().await;
    }
}

/// Commits a batch on `conn` and hands its answers over; returns the connection.
async fn commit_batch(mut conn: Conn, batch: Vec<WriteJob>) -> Conn {
    let mut messages = Vec::with_capacity(batch.len());
    let mut ops = Vec::new();
    let mut flushes = Vec::new();
    let mut checkpoint = false;
    for job in batch {
        match job {
            WriteJob::Message(m, ack) => messages.push((m, ack)),
            WriteJob::Op(op, ack) => ops.push((op, ack)),
            WriteJob::Flush(ack) => flushes.push(ack),
            WriteJob::Checkpoint => checkpoint = true,
        }
    }
    let mut answers = Answers {
        flushes,
        ..Answers::default()
    };
    if !messages.is_empty() || !ops.is_empty() {
        let started = std::time::Instant::now();
        let mut committed = conn.commit(&messages, &ops).await;
        // A connection lost (the database restarted, or closed it) fails a batch that a new one
        // commits: the messages in it were not answered yet.
        if committed.is_err() && conn.reconnect_if_lost().await {
            committed = conn.commit(&messages, &ops).await;
        }
        match committed {
            Ok((results, counts)) => {
                tracing::debug!(
                    messages = results.len(),
                    ops = ops.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "batch committed"
                );
                for ((_, ack), result) in messages.into_iter().zip(results) {
                    answers.messages.push((ack, Ok(result)));
                }
                for ((_, ack), count) in ops.into_iter().zip(counts) {
                    answers.ops.push((ack, Ok(count)));
                }
            }
            Err(e) if messages.len() + ops.len() > 1 => {
                // One write the database refuses (or a deadlock with another instance) must not fail
                // the others committed with it: each is tried alone, and only the refused ones get
                // the error.
                tracing::warn!(error = %e, messages = messages.len(), ops = ops.len(), "a batch failed; storing its writes one by one");
                for message in messages {
                    let single = [message];
                    let result = conn.commit(&single, &[]).await;
                    let [(m, ack)] = single;
                    answers.messages.push((
                            ack,
                            match result {
                                Ok((mut results, _)) => Ok(results.remove(0)),
                                Err(e) => {
                                    tracing::error!(error = %e, msg_type = m.msg_type, "storing a message failed");
                                    Err(Arc::new(e))
                                }
                            },
                        ));
                }
                for op in ops {
                    let single = [op];
                    let result = conn.commit(&[], &single).await;
                    let [(_, ack)] = single;
                    answers.ops.push((
                        ack,
                        result
                            .map(|(_, counts)| counts.first().copied().unwrap_or(0))
                            .map_err(Arc::new),
                    ));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "storing a batch failed");
                let e = Arc::new(e);
                for (_, ack) in messages {
                    answers.messages.push((ack, Err(Arc::clone(&e))));
                }
                for (_, ack) in ops {
                    answers.ops.push((ack, Err(Arc::clone(&e))));
                }
            }
        }
    }
    conn.answer(answers);
    if checkpoint && let Conn::Sqlite { conn, .. } = &mut conn {
        checkpoint_tail(conn).await;
    }
    conn
}

/// A batch's answers, held until what it committed is durable.
#[derive(Default)]
struct Answers {
    messages: Vec<(Ack, Result<Recorded, Arc<sqlx::Error>>)>,
    ops: Vec<(OpAck, Result<u64, Arc<sqlx::Error>>)>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Answers {
    /// Answers every caller; `failed_sync` turns what was committed into that error (a commit that may
    /// not survive a power cut is not acknowledged).
    fn send(self, failed_sync: Option<&Arc<sqlx::Error>>) {
        for (ack, result) in self.messages {
            let _ = ack.send(settle(result, failed_sync));
        }
        for (ack, result) in self.ops {
            let _ = ack.send(settle(result, failed_sync));
        }
        for ack in self.flushes {
            let _ = ack.send(());
        }
    }
}

fn settle<T>(
    result: Result<T, Arc<sqlx::Error>>,
    failed_sync: Option<&Arc<sqlx::Error>>,
) -> Result<T, Arc<sqlx::Error>> {
    match (result, failed_sync) {
        (Ok(_), Some(e)) => Err(Arc::clone(e)),
        (result, _) => result,
    }
}

/// Syncs SQLite's write-ahead log on a thread of its own, so that the writer commits the next batch
/// while the disk syncs the last one.
///
/// The writer's connection runs with `synchronous=NORMAL`: a commit writes its frames to the log (safe
/// from a crash of the process, as they are in the operating system's hands) and SQLite still syncs the
/// log before every checkpoint and when it starts the log over. `synchronous=FULL` adds one thing: a sync
/// of the log at the end of every commit, so that a power cut cannot undo it. That sync is this thread's
/// job. Syncing the file syncs every frame written to it so far, so one sync covers every batch that
/// committed before it started, and their callers are answered only then: as durable as FULL, with the
/// sync of one batch overlapping the statements of the next.
struct LogSync(std::sync::mpsc::Sender<Answers>);

impl LogSync {
    fn spawn(path: PathBuf) -> Result<Self, sqlx::Error> {
        let (tx, rx) = std::sync::mpsc::channel::<Answers>();
        std::thread::Builder::new()
            .name("wxportal-log-sync".into())
            .spawn(move || {
                let mut file = None;
                while let Ok(first) = rx.recv() {
                    let waiting: Vec<Answers> =
                        std::iter::once(first).chain(rx.try_iter()).collect();
                    let synced = sync_log(&mut file, &path);
                    if let Err(e) = &synced {
                        tracing::error!(error = %e, "syncing the write-ahead log failed");
                    }
                    let failed = synced.err().map(|e| Arc::new(sqlx::Error::Io(e)));
                    for answers in waiting {
                        answers.send(failed.as_ref());
                    }
                }
            })
            .map_err(sqlx::Error::Io)?;
        Ok(Self(tx))
    }

    fn answer_after_sync(&self, answers: Answers) {
        if let Err(std::sync::mpsc::SendError(answers)) = self.0.send(answers) {
            // The thread is gone (it cannot be while the writer runs): nothing is acknowledged unsynced.
            let e = Arc::new(sqlx::Error::WorkerCrashed);
            answers.send(Some(&e));
        }
    }
}

/// One `fdatasync` of the log (opened on first use: SQLite creates it with the first write).
fn sync_log(file: &mut Option<std::fs::File>, path: &Path) -> std::io::Result<()> {
    if file.is_none() {
        *file = Some(std::fs::OpenOptions::new().write(true).open(path)?);
    }
    file.as_ref().expect("opened above").sync_data()
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

/// One batch's commit, written once for each backend (the module's name picks its helpers').
macro_rules! commit_batch_on {
    ($backend:ident, $db:ty) => {
        mod $backend {
            use sqlx::Connection;

            use super::super::{
                NewMessage, Recorded, endpoints, jobs, messages, oauth, sessions, users,
            };
            use super::Op;

            pub(super) async fn commit_batch(
                conn: &mut <$db as sqlx::Database>::Connection,
                messages: &[&NewMessage],
                ops: &[&Op],
            ) -> Result<(Vec<Recorded>, Vec<u64>), sqlx::Error> {
                // A message, its sender's row and what it brings along (jobs, an event, a scan, a
                // template's receipt) are committed together: a crash between them would lose some.
                let mut tx = conn.begin().await?;
                let recorded = if messages.is_empty() {
                    Vec::new()
                } else {
                    messages::$backend::insert_batch(&mut tx, messages).await?
                };
                let mut counts = Vec::with_capacity(ops.len());
                for op in ops {
                    counts.push(match op {
                        Op::Job(attempt) => {
                            jobs::$backend::record_attempt(&mut tx, attempt).await?;
                            0
                        }
                        Op::Delivery(endpoint, attempt) => u64::from(
                            endpoints::$backend::record_delivery(&mut tx, *endpoint, attempt)
                                .await?,
                        ),
                        Op::Claim(row) => oauth::$backend::claim(&mut tx, row).await?,
                        Op::Authorization(done) => {
                            users::$backend::save_authorization(&mut tx, done).await?;
                            0
                        }
                        Op::Session(write) => sessions::$backend::write(&mut tx, write).await?,
                    });
                }
                tx.commit().await?;
                Ok((recorded, counts))
            }
        }
    };
}
commit_batch_on!(sqlite, sqlx::Sqlite);
commit_batch_on!(postgres, sqlx::Postgres);

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

#[cfg(test)]
mod tests {
    use super::*;

    type Answered<T> = oneshot::Receiver<Result<T, Arc<sqlx::Error>>>;

    /// A batch's answers, as the writer hands them over: a stored message, a write's count, a flush.
    fn batch() -> (
        Answers,
        Answered<Recorded>,
        Answered<u64>,
        oneshot::Receiver<()>,
    ) {
        let (message, message_rx) = oneshot::channel();
        let (op, op_rx) = oneshot::channel();
        let (flush, flush_rx) = oneshot::channel();
        let answers = Answers {
            messages: vec![(message, Ok(Recorded::Inserted))],
            ops: vec![(op, Ok(1))],
            flushes: vec![flush],
        };
        (answers, message_rx, op_rx, flush_rx)
    }

    #[test]
    fn answers_wait_for_the_logs_sync_and_a_failed_sync_acknowledges_nothing() {
        let dir = std::env::temp_dir().join(format!("wxportal-logsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("db-wal");
        std::fs::write(&log, b"frames").unwrap();

        let synced = LogSync::spawn(log.clone()).unwrap();
        let (answers, message, op, flush) = batch();
        synced.answer_after_sync(answers);
        assert_eq!(
            message.blocking_recv().unwrap().unwrap(),
            Recorded::Inserted
        );
        assert_eq!(op.blocking_recv().unwrap().unwrap(), 1);
        flush.blocking_recv().unwrap();

        // A log that cannot be synced (here: not there): what was committed is answered as an error.
        let unsyncable = LogSync::spawn(dir.join("missing").join("db-wal")).unwrap();
        let (answers, message, op, flush) = batch();
        unsyncable.answer_after_sync(answers);
        assert!(message.blocking_recv().unwrap().is_err());
        assert!(op.blocking_recv().unwrap().is_err());
        flush.blocking_recv().unwrap();
        // Errors the batch already had stay errors.
        let (ack, rx) = oneshot::channel();
        unsyncable.answer_after_sync(Answers {
            messages: vec![(ack, Err(Arc::new(sqlx::Error::RowNotFound)))],
            ..Answers::default()
        });
        assert!(matches!(
            rx.blocking_recv().unwrap().unwrap_err().as_ref(),
            sqlx::Error::RowNotFound
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
