//! The delivery worker: takes due deliveries, signs and posts them, records what the endpoint said.
//!
//! Like the outbox, each delivery is claimed before its attempt, so two processes never post it at
//! once; a process that dies mid-attempt leaves a claim that lapses, and the delivery is attempted
//! again (the only way an endpoint receives an event twice, and the log says so). Receivers
//! deduplicate on `webhook-id`, which every attempt repeats.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use super::signature;
use crate::store::{Delivery, DeliveryAttempt, Endpoint, Store};
use crate::time::unix_now;

/// Deliveries in progress at once, per process: each is mostly waiting on an endpoint, and claiming
/// many at a time keeps the claims (writes) few.
const CONCURRENCY: usize = 64;
/// The shortest time between two claims.
const CLAIM_GAP: Duration = Duration::from_millis(10);
/// How often an idle worker looks for deliveries queued by other processes.
const POLL: Duration = Duration::from_secs(1);
/// The longest pause between two attempts.
const MAX_PAUSE: i64 = 3600;
/// How much of an endpoint's answer is kept, for the operator.
const KEEP_ANSWER: usize = 1024;

/// The pause before attempt `attempts + 1`: 2 s, 4 s, 8 s … up to an hour (about thirty attempts in
/// the day a delivery is tried).
pub fn backoff(attempts: i64) -> i64 {
    2i64.saturating_pow(attempts.clamp(1, 30) as u32)
        .min(MAX_PAUSE)
}

/// One process's delivery worker.
#[derive(Debug)]
pub struct Deliverer {
    store: Store,
    http: reqwest::Client,
    owner: String,
    /// How long an endpoint has to answer.
    timeout: Duration,
    wake: Notify,
    /// Attempts' outcomes, recorded in groups by [`record_in_groups`].
    recorder: mpsc::Sender<Recorded>,
}

/// An attempt's outcome for its endpoint, and who waits for it to be committed (told whether the
/// endpoint was switched off).
type Recorded = (i64, DeliveryAttempt, oneshot::Sender<Result<bool, String>>);

/// Commits outcomes in groups: whatever arrived while the last group committed, at most 256.
async fn record_in_groups(store: Store, mut rx: mpsc::Receiver<Recorded>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let (outcomes, acks): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|(endpoint, attempt, ack)| ((endpoint, attempt), ack))
            .unzip();
        match store.record_deliveries(outcomes).await {
            Ok(disabled) => {
                for (ack, disabled) in acks.into_iter().zip(disabled) {
                    let _ = ack.send(Ok(disabled));
                }
            }
            Err(e) => {
                for ack in acks {
                    let _ = ack.send(Err(e.to_string()));
                }
            }
        }
    }
}

impl Deliverer {
    /// A worker for this process; starts the task that records its outcomes.
    pub fn new(store: Store, http: reqwest::Client, timeout: Duration) -> Self {
        let (recorder, rx) = mpsc::channel(4 * CONCURRENCY);
        tokio::spawn(record_in_groups(store.clone(), rx));
        Self {
            store,
            http,
            owner: crate::store::owner_id(),
            timeout,
            wake: Notify::new(),
            recorder,
        }
    }

    /// An event was queued in this process: look now rather than at the next poll.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// A claim outlasts an attempt by a margin.
    fn claim_secs(&self) -> i64 {
        self.timeout.as_secs() as i64 + 10
    }

    /// Takes due deliveries and attempts them, forever (until the database closes).
    pub async fn run(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut last_claim = tokio::time::Instant::now();
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            if self.store.is_closed() {
                return;
            }
            // Claims are writes: at most one per CLAIM_GAP, taking every hand free by then, so that a
            // busy stream of events costs a few claims a second rather than one per delivery.
            tokio::time::sleep_until(last_claim + CLAIM_GAP).await;
            last_claim = tokio::time::Instant::now();
            let mut hands = vec![permit];
            while let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
                hands.push(permit);
            }
            match self
                .store
                .claim_deliveries(&self.owner, self.claim_secs(), hands.len())
                .await
            {
                Ok(deliveries) if !deliveries.is_empty() => {
                    // Each endpoint read once for the batch.
                    let mut endpoints: HashMap<i64, Option<Arc<Endpoint>>> = HashMap::new();
                    for (delivery, _) in &deliveries {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            endpoints.entry(delivery.endpoint_id)
                        {
                            slot.insert(match self.store.endpoint(delivery.endpoint_id).await {
                                Ok(endpoint) => endpoint.map(Arc::new),
                                Err(e) => {
                                    // The claims lapse and the deliveries are attempted later.
                                    tracing::warn!(error = %e, "reading an endpoint failed");
                                    None
                                }
                            });
                        }
                    }
                    for ((delivery, taken_over), permit) in deliveries.into_iter().zip(hands) {
                        // Deleted meanwhile: its deliveries went with it.
                        let Some(endpoint) = endpoints[&delivery.endpoint_id].clone() else {
                            continue;
                        };
                        let worker = Arc::clone(&self);
                        tokio::spawn(async move {
                            worker.attempt(&endpoint, delivery, taken_over).await;
                            drop(permit);
                            // The follower's next event may be waiting for this one.
                            worker.wake();
                        });
                    }
                }
                Ok(_) => {
                    drop(hands);
                    let pause = match self.store.next_delivery_due().await {
                        Ok(Some(due)) => Duration::from_secs((due - unix_now()).clamp(0, 1) as u64),
                        _ => POLL,
                    };
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(pause.min(POLL)) => {}
                    }
                }
                Err(_) if self.store.is_closed() => return,
                Err(e) => {
                    drop(hands);
                    tracing::warn!(error = %e, "taking a delivery failed");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    async fn attempt(&self, endpoint: &Endpoint, delivery: Delivery, taken_over: bool) {
        if taken_over {
            tracing::warn!(
                delivery = delivery.id,
                event = delivery.uid,
                attempt = delivery.attempts,
                "a delivery was cut off in mid-call (its process stopped); trying again, so the endpoint \
                 may receive this event twice (same webhook-id)"
            );
        }
        let now = unix_now();
        let body = delivery.payload.as_bytes();
        let signatures =
            signature::header(&endpoint.signing_secrets(now), &delivery.uid, now, body);
        let sent = self
            .http
            .post(&endpoint.url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.uid)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signatures)
            .body(delivery.payload.clone())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status();
                let answer = read_start(response).await;
                if status.is_success() {
                    DeliveryAttempt::Delivered {
                        id: delivery.id,
                        status: i64::from(status.as_u16()),
                        response: answer,
                        ends_streak: endpoint.failing_since.is_some(),
                    }
                } else {
                    self.failed(
                        &delivery,
                        Some(status.as_u16()),
                        format!("HTTP {status}"),
                        Some(answer),
                    )
                }
            }
            Err(e) => {
                let reason = if e.is_timeout() {
                    tracing::warn!(
                        delivery = delivery.id,
                        event = delivery.uid,
                        "an endpoint did not answer in time; it may have received the event, and will \
                         receive it again (same webhook-id)"
                    );
                    format!("no answer within {} s", self.timeout.as_secs())
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    format!("the request failed: {e}")
                };
                self.failed(&delivery, None, reason, None)
            }
        };
        match &outcome {
            DeliveryAttempt::Delivered { .. } => tracing::debug!(
                delivery = delivery.id,
                event = delivery.uid,
                endpoint = endpoint.id,
                attempt = delivery.attempts,
                "event delivered"
            ),
            DeliveryAttempt::Failed {
                error, retry_at, ..
            } => tracing::info!(
                delivery = delivery.id,
                event = delivery.uid,
                endpoint = endpoint.id,
                attempt = delivery.attempts,
                reason = %error,
                given_up = *retry_at > delivery.give_up_at,
                "event delivery failed"
            ),
        }
        let (ack, committed) = oneshot::channel();
        let recorded = match self.recorder.send((endpoint.id, outcome, ack)).await {
            Ok(()) => committed
                .await
                .unwrap_or_else(|_| Err("the recorder stopped".into())),
            Err(_) => Err("the recorder stopped".into()),
        };
        match recorded {
            Ok(true) => tracing::warn!(
                endpoint = endpoint.id,
                url = endpoint.url,
                "an event endpoint was switched off: every attempt failed for a day"
            ),
            Ok(false) => {}
            // The claim lapses and the delivery is attempted again.
            Err(e) => {
                tracing::error!(delivery = delivery.id, error = %e, "recording a delivery failed")
            }
        }
    }

    fn failed(
        &self,
        delivery: &Delivery,
        status: Option<u16>,
        error: String,
        response: Option<String>,
    ) -> DeliveryAttempt {
        DeliveryAttempt::Failed {
            id: delivery.id,
            status: status.map(i64::from),
            error,
            response,
            retry_at: unix_now() + backoff(delivery.attempts),
        }
    }
}

/// The first [`KEEP_ANSWER`] bytes of an answer, as text.
async fn read_start(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < KEEP_ANSWER {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(KEEP_ANSWER);
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_and_fills_a_day_with_about_thirty_attempts() {
        assert_eq!(backoff(1), 2);
        assert_eq!(backoff(11), 2048);
        assert_eq!(backoff(12), 3600);
        let mut elapsed = 0;
        let mut attempts = 0;
        while elapsed < 86_400 {
            attempts += 1;
            elapsed += backoff(attempts);
        }
        assert!((25..=40).contains(&attempts), "{attempts}");
    }
}
