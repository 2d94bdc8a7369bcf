//! Event webhooks out: the endpoints the account's own systems registered, the events queued for them
//! and each event's delivery to each endpoint (docs/events.md).
//!
//! An event is queued in the same transaction as what it reports (a message, a sign-in): a committed
//! message never loses its event, and a retry of a message (deduplicated) queues none.

use sqlx::{FromRow, QueryBuilder};

use super::writer::Op;
use super::{Store, StoreError, on_pool, per_backend, stored_as_text};
use crate::time::unix_now;

/// What an endpoint can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A follower's message of any type (text, image, voice, video, location, link …).
    Message,
    Subscribe,
    Unsubscribe,
    /// A follower who already follows scanned a code with a scene.
    Scan,
    /// A menu CLICK button.
    Click,
    /// WeChat's report of a template message's delivery (`TEMPLATESENDJOBFINISH`).
    TemplateFinish,
    /// A follower signed in on the portal (web authorization).
    OauthSignin,
}

impl EventType {
    pub const ALL: [Self; 7] = [
        Self::Message,
        Self::Subscribe,
        Self::Unsubscribe,
        Self::Scan,
        Self::Click,
        Self::TemplateFinish,
        Self::OauthSignin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Scan => "scan",
            Self::Click => "click",
            Self::TemplateFinish => "template_finish",
            Self::OauthSignin => "oauth_signin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A registered endpoint. Its secrets sign; they are shown to the operator once, when made.
#[derive(Debug, Clone, FromRow)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub description: String,
    #[sqlx(rename = "events")]
    event_text: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
}

impl Endpoint {
    /// The event types it asked for.
    pub fn events(&self) -> Vec<EventType> {
        self.event_text
            .split(',')
            .filter_map(EventType::parse)
            .collect()
    }

    /// The secrets that sign now: the current one, and the previous one during a rotation's overlap.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_until)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// An endpoint with its deliveries counted, for the admin's list.
#[derive(Debug, Clone, FromRow)]
pub struct EndpointSummary {
    #[sqlx(flatten)]
    pub endpoint: Endpoint,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Queued,
    Sending,
    Done,
    Failed,
}
stored_as_text!(DeliveryState { Queued = "queued", Sending = "sending", Done = "done", Failed = "failed" });

/// One event's delivery to one endpoint, with what it sends.
#[derive(Debug, Clone, FromRow)]
pub struct Delivery {
    pub id: i64,
    pub event_id: i64,
    pub endpoint_id: i64,
    pub openid: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub due_at: i64,
    pub give_up_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    /// The event's `webhook-id`.
    pub uid: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// The exact body every attempt sends.
    pub payload: String,
}

/// An event to queue with what it reports: its type, the follower it is about and its `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub openid: String,
    pub data: serde_json::Value,
}

/// How long deliveries are attempted, from when they were queued (or sent again).
pub const RETRY_FOR_SECS: i64 = 86_400;
/// An endpoint whose every attempt has failed for this long is switched off.
pub const DISABLE_AFTER_SECS: i64 = 86_400;

/// What became of an attempt at a delivery.
#[derive(Debug, Clone)]
pub enum DeliveryAttempt {
    /// The endpoint answered 2xx.
    Delivered {
        id: i64,
        status: i64,
        response: String,
        /// The endpoint was failing when the delivery was claimed: its streak ends.
        ends_streak: bool,
    },
    /// It failed: tried again at `retry_at`, or given up when that is past the delivery's last chance.
    Failed {
        id: i64,
        status: Option<i64>,
        error: String,
        response: Option<String>,
        retry_at: i64,
    },
}

/// `2026-12-05T10:00:00Z`: a unix time as RFC 3339 in UTC.
fn rfc3339(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// The body sent for an event: the envelope of docs/events.md, version 1.
fn envelope(uid: &str, event: &NewEvent, at: i64) -> String {
    serde_json::json!({
        "id": uid,
        "type": event.event_type.as_str(),
        "version": 1,
        "timestamp": rfc3339(at),
        "data": event.data,
    })
    .to_string()
}

per_backend! {
/// Queues `events` (each with its time) for every enabled endpoint that asked for its type, inside the
/// caller's transaction: three statements however many events (the message writer queues a batch's
/// events together); nothing is written when no endpoint wants them.
pub(crate) async fn queue_events(
    conn: &mut <Db as sqlx::Database>::Connection,
    events: &[(NewEvent, i64)],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let endpoints: Vec<(i64, String)> = sqlx::query_as::<Db, (i64, String)>(
        "SELECT id, events FROM endpoints WHERE enabled ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let wanting = |t: EventType| -> Vec<i64> {
        endpoints
            .iter()
            .filter(|(_, types)| types.split(',').any(|x| x == t.as_str()))
            .map(|(id, _)| *id)
            .collect()
    };
    let queued: Vec<(String, &NewEvent, i64, Vec<i64>)> = events
        .iter()
        .map(|(e, at)| {
            let uid = format!("evt_{}", hex::encode(rand::random::<[u8; 12]>()));
            (uid, e, *at, wanting(e.event_type))
        })
        .filter(|(_, _, _, to)| !to.is_empty())
        .collect();
    for chunk in queued.chunks(200) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO events (uid, type, openid, payload, created_at) ",
        );
        insert.push_values(chunk, |mut row, (uid, e, at, _)| {
            row.push_bind(uid)
                .push_bind(e.event_type.as_str())
                .push_bind(&e.openid)
                .push_bind(envelope(uid, e, *at))
                .push_bind(*at);
        });
        insert.push(" RETURNING uid, id");
        let ids: std::collections::HashMap<String, i64> = insert
            .build_query_as::<(String, i64)>()
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        let rows: Vec<(i64, i64, &str, i64)> = chunk
            .iter()
            .flat_map(|(uid, e, at, to)| {
                let id = ids[uid];
                to.iter().map(move |endpoint| (id, *endpoint, e.openid.as_str(), *at))
            })
            .collect();
        for rows in rows.chunks(150) {
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO deliveries (event_id, endpoint_id, openid, due_at, give_up_at, created_at) ",
            );
            insert.push_values(rows, |mut row, (event, endpoint, openid, at)| {
                row.push_bind(*event)
                    .push_bind(*endpoint)
                    .push_bind(*openid)
                    .push_bind(*at)
                    .push_bind(*at + RETRY_FOR_SECS)
                    .push_bind(*at);
            });
            insert.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Records an attempt inside the caller's transaction (see [`Store::record_deliveries`]).
pub(in crate::store) async fn record_delivery(
    conn: &mut <Db as sqlx::Database>::Connection,
    endpoint_id: i64,
    attempt: &DeliveryAttempt,
) -> Result<bool, sqlx::Error> {
    let now = unix_now();
    Ok(match attempt {
        DeliveryAttempt::Delivered {
            id,
            status,
            response,
            ends_streak,
        } => {
            sqlx::query::<Db>(
                "UPDATE deliveries SET state = 'done', finished_at = $1, last_status = $2,
                     last_error = NULL, response = $3, claimed_by = NULL, claimed_until = 0
                 WHERE id = $4",
            )
            .bind(now)
            .bind(status)
            .bind(response)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            // Only when a failure streak ends: not a statement with every delivery.
            if *ends_streak {
                sqlx::query::<Db>("UPDATE endpoints SET failing_since = NULL WHERE id = $1")
                    .bind(endpoint_id)
                    .execute(&mut *conn)
                    .await?;
            }
            false
        }
        DeliveryAttempt::Failed {
            id,
            status,
            error,
            response,
            retry_at,
        } => {
            sqlx::query::<Db>(
                "UPDATE deliveries SET
                     state = CASE WHEN give_up_at < $1 THEN 'failed' ELSE 'queued' END,
                     finished_at = CASE WHEN give_up_at < $1 THEN $2 ELSE NULL END,
                     due_at = $1, last_status = $3, last_error = $4, response = $5,
                     claimed_by = NULL, claimed_until = 0
                 WHERE id = $6",
            )
            .bind(retry_at)
            .bind(now)
            .bind(status)
            .bind(error)
            .bind(response)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query::<Db>(
                "UPDATE endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL",
            )
            .bind(now)
            .bind(endpoint_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query::<Db>(
                "UPDATE endpoints SET enabled = FALSE, disabled_reason = $1
                 WHERE id = $2 AND enabled AND failing_since <= $3",
            )
            .bind(format!("every attempt failed for a day; the last: {error}"))
            .bind(endpoint_id)
            .bind(now - DISABLE_AFTER_SECS)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
    })
}
}

/// Queues events inside the caller's transaction, on either backend.
pub(crate) trait QueueEvent: Send {
    fn queue_events(
        &mut self,
        events: &[(NewEvent, i64)],
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

impl QueueEvent for sqlx::SqliteConnection {
    async fn queue_events(&mut self, events: &[(NewEvent, i64)]) -> Result<(), sqlx::Error> {
        sqlite::queue_events(self, events).await
    }
}

impl QueueEvent for sqlx::PgConnection {
    async fn queue_events(&mut self, events: &[(NewEvent, i64)]) -> Result<(), sqlx::Error> {
        postgres::queue_events(self, events).await
    }
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.endpoint_id, d.openid, d.state, d.attempts, d.due_at,
     d.give_up_at, d.created_at, d.finished_at, d.last_status, d.last_error, d.response, e.uid, e.type,
     e.payload";

impl Store {
    /// Registers an endpoint; returns its id.
    pub async fn create_endpoint(
        &self,
        url: &str,
        description: &str,
        events: &[EventType],
        secret: &str,
    ) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO endpoints (url, description, events, secret, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id"
        )
        .bind(url)
        .bind(description)
        .bind(events.join(","))
        .bind(secret)
        .bind(unix_now())
        .fetch_one(pool)
        .await?))
    }

    pub async fn endpoint(&self, id: i64) -> Result<Option<Endpoint>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM endpoints WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Every endpoint, oldest first, with its deliveries counted.
    pub async fn endpoints(&self) -> Result<Vec<EndpointSummary>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT endpoints.*,
                 (SELECT count(*) FROM deliveries d WHERE d.endpoint_id = endpoints.id
                     AND d.state IN ('queued', 'sending')) AS pending,
                 (SELECT count(*) FROM deliveries d WHERE d.endpoint_id = endpoints.id
                     AND d.state = 'done') AS delivered,
                 (SELECT count(*) FROM deliveries d WHERE d.endpoint_id = endpoints.id
                     AND d.state = 'failed') AS failed
             FROM endpoints ORDER BY id"
        )
        .fetch_all(pool)
        .await?))
    }

    /// Removes an endpoint and its deliveries; false if there was none.
    pub async fn delete_endpoint(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let deleted = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM deliveries WHERE endpoint_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM endpoints WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            deleted
        });
        Ok(deleted == 1)
    }

    /// Switches an endpoint on (its failure streak forgotten) or off with `reason`; false if there is none.
    pub async fn set_endpoint_enabled(
        &self,
        id: i64,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE endpoints SET enabled = $1, disabled_reason = $2, failing_since = NULL WHERE id = $3"
        )
        .bind(enabled)
        .bind(if enabled { None } else { reason })
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Puts `secret` in place; the one it replaces keeps signing until `previous_until`.
    pub async fn rotate_endpoint_secret(
        &self,
        id: i64,
        secret: &str,
        previous_until: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE endpoints SET previous_secret = secret, previous_until = $1, secret = $2 WHERE id = $3"
        )
        .bind(previous_until)
        .bind(secret)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(changed == 1)
    }

    /// The event types some enabled endpoint asked for.
    pub(crate) async fn subscribed_event_types(&self) -> Result<Vec<EventType>, StoreError> {
        let rows: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT events FROM endpoints WHERE enabled"
        )
        .fetch_all(pool)
        .await?);
        let mut types: Vec<EventType> = rows
            .iter()
            .flat_map(|r| r.split(','))
            .filter_map(EventType::parse)
            .collect();
        types.sort_by_key(|t| t.as_str());
        types.dedup();
        Ok(types)
    }

    /// Claims up to `limit` due deliveries for `claim_secs`: for each endpoint and follower only the
    /// oldest one not yet finished, so that one follower's events arrive in the order they happened.
    /// That oldest one is a scalar subquery, one index lookup per candidate: as `NOT EXISTS` (an anti
    /// join) PostgreSQL planned it, on a fresh table's statistics, as a scan of every pending delivery
    /// per pending delivery (56 s for 10,000).
    /// The flag says a claim was taken over from a process that stopped mid-attempt.
    pub(crate) async fn claim_deliveries(
        &self,
        owner: &str,
        claim_secs: i64,
        limit: usize,
    ) -> Result<Vec<(Delivery, bool)>, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let candidates: Vec<(i64, DeliveryState)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT d.id, d.state FROM deliveries d JOIN endpoints ep ON ep.id = d.endpoint_id
             WHERE d.state IN ('queued', 'sending') AND d.due_at <= $1
               AND (d.state = 'queued' OR d.claimed_until < $1) AND ep.enabled
               AND d.id = (SELECT min(head.id) FROM deliveries head
                   WHERE head.endpoint_id = d.endpoint_id AND head.openid = d.openid
                     AND head.state IN ('queued', 'sending'))
             ORDER BY d.due_at, d.id LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(pool)
        .await?);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let claimed: Vec<i64> = on_pool!(self, |pool| {
            let mut update =
                QueryBuilder::new("UPDATE deliveries SET state = 'sending', claimed_by = ");
            update
                .push_bind(owner)
                .push(", claimed_until = ")
                .push_bind(now + claim_secs)
                .push(", attempts = attempts + 1 WHERE (state = 'queued' OR (state = 'sending' AND claimed_until < ")
                .push_bind(now)
                .push(")) AND id IN (");
            let mut ids = update.separated(", ");
            for (id, _) in &candidates {
                ids.push_bind(*id);
            }
            update.push(") RETURNING id");
            update.build_query_scalar().fetch_all(pool).await?
        });
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let mut deliveries: Vec<Delivery> = on_pool!(self, |pool| {
            let mut select = QueryBuilder::new(format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id IN ("
            ));
            let mut ids = select.separated(", ");
            for id in &claimed {
                ids.push_bind(*id);
            }
            select.push(")");
            select.build_query_as().fetch_all(pool).await?
        });
        deliveries.sort_by_key(|d| (d.due_at, d.id));
        Ok(deliveries
            .into_iter()
            .map(|d| {
                let taken_over = candidates
                    .iter()
                    .any(|(id, state)| *id == d.id && *state == DeliveryState::Sending);
                (d, taken_over)
            })
            .collect())
    }

    /// When the next delivery is due, if any is waiting.
    pub(crate) async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT min(CASE WHEN state = 'queued' THEN due_at ELSE claimed_until + 1 END)
             FROM deliveries WHERE state IN ('queued', 'sending')"
        )
        .fetch_one(pool)
        .await?))
    }

    /// Records attempts, each with its endpoint; after a failure, switches the endpoint off once it has
    /// failed for [`DISABLE_AFTER_SECS`]. Returns, for each, whether that happened now. Committed
    /// together by the message writer, with the messages arriving meanwhile: a delivery per message, each
    /// a write of its own, took SQLite's one write lock and a sync (or on PostgreSQL a commit) from under
    /// the webhook.
    pub(crate) async fn record_deliveries(
        &self,
        outcomes: Vec<(i64, DeliveryAttempt)>,
    ) -> Result<Vec<bool>, StoreError> {
        let switched_off = self
            .writer
            .ops(
                outcomes
                    .into_iter()
                    .map(|(endpoint, attempt)| Op::Delivery(endpoint, attempt))
                    .collect(),
            )
            .await?;
        Ok(switched_off.into_iter().map(|n| n == 1).collect())
    }

    /// An endpoint's newest deliveries first, before `before` (an id), optionally in one state.
    pub async fn deliveries(
        &self,
        endpoint_id: i64,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut select = QueryBuilder::new(format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.endpoint_id = "
            ));
            select.push_bind(endpoint_id);
            if let Some(state) = state {
                select.push(" AND d.state = ").push_bind(state);
            }
            if let Some(before) = before {
                select.push(" AND d.id < ").push_bind(before);
            }
            select.push(" ORDER BY d.id DESC LIMIT ").push_bind(limit);
            select.build_query_as().fetch_all(pool).await?
        }))
    }

    /// Queues a finished delivery again, now, with a day of attempts ahead: "send again". False when
    /// it is not the endpoint's or is still being attempted.
    pub async fn resend_delivery(&self, endpoint_id: i64, id: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let changed = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE deliveries SET state = 'queued', due_at = $1, give_up_at = $2, finished_at = NULL
             WHERE id = $3 AND endpoint_id = $4 AND state IN ('done', 'failed')"
        )
        .bind(now)
        .bind(now + RETRY_FOR_SECS)
        .bind(id)
        .bind(endpoint_id)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Endpoints switched off after failing, for the dashboard.
    pub async fn failed_endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM endpoints WHERE NOT enabled ORDER BY id"
        )
        .fetch_all(pool)
        .await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_read_back_from_their_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("Message"), None);
    }

    #[test]
    fn times_are_rfc_3339_in_utc() {
        assert_eq!(rfc3339(1_614_265_330), "2021-02-25T15:02:10Z");
    }
}
