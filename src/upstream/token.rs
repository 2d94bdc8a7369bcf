//! The account's access_token and JS-SDK jsapi_ticket (docs/wechat.md §7), shared by every task and every
//! process on one database.
//!
//! A value lives in the `credentials` table with its expiry. Whoever needs one reads it there (and keeps
//! it in memory until it nears expiry). A fetch is made only by the holder of the row's lease: tasks of
//! one process first queue on a mutex, processes then race for the lease in one conditional UPDATE, and
//! the losers wait for the winner's value to appear. A background task renews each value
//! [`REFRESH_AHEAD`] before it expires, so callers normally never wait for WeChat.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{ApiError, Upstream};
use crate::config::{Secret, TokenApi};
use crate::store::{CredentialRow, Store};
use crate::time::unix_now;

/// Renew a value this long before it expires. stable_token hands out a new token only in the last five
/// minutes of the old one's life (before that it returns the same one), so this is inside those five.
pub(crate) const REFRESH_AHEAD: i64 = 240;
/// Renewals ahead are at least this far apart, whatever WeChat answers.
const RENEW_SPACING: u64 = 10;
/// A value with less than this left is not handed out: a call made with it could arrive too late.
const MIN_LEFT: i64 = 30;
/// How long a fetch may hold the lease; the lease of a process that died mid-fetch lapses after this.
const LEASE_SECS: i64 = 15;
/// How often a process that lost the race looks for the winner's value.
const WAIT_STEP: Duration = Duration::from_millis(100);
/// The background renewal looks at least this often (values can also change in other processes).
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Seconds to wait after `failures` failed renewals in a row: 10, 20, 40 … up to 10 minutes.
fn retry_pause(failures: u32) -> u64 {
    (RENEW_SPACING << failures.saturating_sub(1).min(6)).min(600)
}

/// Which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AccessToken,
    JsapiTicket,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::JsapiTicket => "jsapi_ticket",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::AccessToken => 0,
            Self::JsapiTicket => 1,
        }
    }
}

/// A value and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub value: String,
    pub expires_at: i64,
}

impl Credential {
    fn usable(&self, now: i64) -> bool {
        self.expires_at - now >= MIN_LEFT
    }
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

#[derive(Debug, Deserialize)]
struct TicketAnswer {
    ticket: String,
    expires_in: i64,
}

/// The account's credentials, as one process sees them.
#[derive(Debug)]
pub struct Credentials {
    store: Store,
    upstream: Upstream,
    appid: String,
    secret: Option<Secret>,
    api: TokenApi,
    /// This process, in lease rows.
    owner: String,
    cache: [Mutex<Option<Credential>>; 2],
    /// One fetch at a time per kind in this process.
    fetching: [tokio::sync::Mutex<()>; 2],
    /// The last failed fetch of each kind by a caller, until its backoff ends.
    failures: [Mutex<Option<Failure>>; 2],
}

/// A failed fetch, remembered.
#[derive(Debug)]
struct Failure {
    error: ApiError,
    /// Failures in a row: the backoff doubles with each.
    count: u32,
    until: Instant,
}

impl Credentials {
    pub fn new(
        store: Store,
        upstream: Upstream,
        appid: &str,
        secret: Option<Secret>,
        api: TokenApi,
    ) -> Self {
        Self {
            store,
            upstream,
            appid: appid.to_owned(),
            secret,
            api,
            owner: crate::store::owner_id(),
            cache: Default::default(),
            fetching: Default::default(),
            failures: Default::default(),
        }
    }

    /// Whether an AppSecret is configured: without one no credential can be had.
    pub(crate) fn configured(&self) -> bool {
        self.secret.is_some()
    }

    /// A usable value of `kind`: from memory, else the database, else one fetch for everyone.
    ///
    /// A failed fetch is remembered with its backoff (10 s, doubling to 10 minutes): until then every
    /// caller gets the same error at once, so a wrong AppSecret or a missing IP whitelist entry is not
    /// asked about again for each anonymous page view.
    pub async fn get(&self, kind: Kind) -> Result<Credential, ApiError> {
        if self.secret.is_none() {
            return Err(ApiError::NoSecret);
        }
        if let Some(c) = self.cached(kind) {
            return Ok(c);
        }
        self.failed_recently(kind)?;
        let _turn = self.fetching[kind.index()].lock().await;
        // Whoever held the turn before may have just fetched it, or just failed.
        if let Some(c) = self.cached(kind) {
            return Ok(c);
        }
        self.failed_recently(kind)?;
        let obtained = self.obtain(kind, false).await;
        let mut failure = self.failures[kind.index()]
            .lock()
            .expect("failures poisoned");
        match &obtained {
            Ok(_) => *failure = None,
            Err(e) => {
                let count = failure.as_ref().map_or(0, |f| f.count) + 1;
                *failure = Some(Failure {
                    error: e.clone(),
                    count,
                    until: Instant::now() + Duration::from_secs(retry_pause(count)),
                });
            }
        }
        obtained
    }

    /// The error of the last fetch, while its backoff lasts.
    fn failed_recently(&self, kind: Kind) -> Result<(), ApiError> {
        let failure = self.failures[kind.index()]
            .lock()
            .expect("failures poisoned");
        match failure.as_ref() {
            Some(f) if Instant::now() < f.until => Err(f.error.clone()),
            _ => Ok(()),
        }
    }

    /// WeChat refused `value` (40001/42001): forget it, so the next [`Credentials::get`] fetches anew.
    pub async fn refused(&self, kind: Kind, value: &str) {
        {
            let mut cache = self.cache[kind.index()].lock().expect("cache poisoned");
            if cache.as_ref().is_some_and(|c| c.value == value) {
                *cache = None;
            }
        }
        match self.store.refuse_credential(kind.as_str(), value).await {
            Ok(true) => tracing::warn!(
                kind = kind.as_str(),
                "WeChat refused the stored credential; fetching a new one"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "marking a credential refused failed"),
        }
    }

    /// Renews both credentials ahead of expiry, forever (the access_token only once an AppSecret is
    /// set; the ticket only once something asked for it).
    pub(crate) async fn keep_fresh(self: Arc<Self>) {
        if self.secret.is_none() {
            return;
        }
        // Failed renewals in a row: the pause after one doubles, so a lasting refusal (an IP whitelist, a
        // quota) is not asked about every few seconds all day.
        let mut failures = 0u32;
        loop {
            let mut next = CHECK_EVERY;
            let mut failed = false;
            for kind in [Kind::AccessToken, Kind::JsapiTicket] {
                match self.renew_if_due(kind).await {
                    Ok(Some(expires_at)) => {
                        let until_due = (expires_at - REFRESH_AHEAD - unix_now()).max(0) as u64;
                        next = next.min(Duration::from_secs(until_due.max(RENEW_SPACING)));
                    }
                    Ok(None) => {}
                    Err(_) if self.store.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), error = %e, "renewing ahead failed");
                        failed = true;
                    }
                }
            }
            failures = if failed { failures + 1 } else { 0 };
            if failed {
                next = Duration::from_secs(retry_pause(failures));
            }
            tokio::time::sleep(next).await;
        }
    }

    /// Renews `kind` if it is within [`REFRESH_AHEAD`] of expiry; returns the (new) expiry.
    async fn renew_if_due(&self, kind: Kind) -> Result<Option<i64>, ApiError> {
        let row = self.row(kind).await?;
        if row.value.is_none() && kind == Kind::JsapiTicket {
            return Ok(None);
        }
        if row.expires_at - unix_now() > REFRESH_AHEAD {
            return Ok(Some(row.expires_at));
        }
        let _turn = self.fetching[kind.index()].lock().await;
        let row = self.row(kind).await?;
        if row.expires_at - unix_now() > REFRESH_AHEAD {
            return Ok(Some(row.expires_at));
        }
        tracing::info!(kind = kind.as_str(), "renewing ahead of expiry");
        self.obtain(kind, true).await.map(|c| Some(c.expires_at))
    }

    fn cached(&self, kind: Kind) -> Option<Credential> {
        let cache = self.cache[kind.index()].lock().expect("cache poisoned");
        cache.clone().filter(|c| c.usable(unix_now()))
    }

    fn remember(&self, kind: Kind, c: &Credential) {
        *self.cache[kind.index()].lock().expect("cache poisoned") = Some(c.clone());
    }

    async fn row(&self, kind: Kind) -> Result<CredentialRow, ApiError> {
        self.store
            .credential(kind.as_str())
            .await
            .map_err(ApiError::from)
    }

    /// With this process's turn held: the stored value if usable (or, `ahead`, not yet due), else a
    /// fetch by whichever process takes the lease, waited for by the others.
    async fn obtain(&self, kind: Kind, ahead: bool) -> Result<Credential, ApiError> {
        let started = unix_now();
        loop {
            let row = self.row(kind).await?;
            let now = unix_now();
            let stored = row.value.clone().map(|value| Credential {
                value,
                expires_at: row.expires_at,
            });
            let due = |c: &Credential| {
                if ahead {
                    c.expires_at - now <= REFRESH_AHEAD
                } else {
                    !c.usable(now)
                }
            };
            if let Some(c) = stored.as_ref().filter(|c| !due(c) && c.expires_at > 0) {
                self.remember(kind, c);
                return Ok(c.clone());
            }
            let lease_until = now + LEASE_SECS;
            let leased = self
                .store
                .take_credential_lease(kind.as_str(), &self.owner, lease_until, &row)
                .await
                .map_err(ApiError::from)?;
            if leased {
                return self.fetch_and_store(kind, row.refused()).await;
            }
            // Another process is fetching: wait for its value (or for its lease to lapse).
            if now - started > LEASE_SECS + 5 {
                return Err(ApiError::Timeout);
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    async fn fetch_and_store(&self, kind: Kind, force: bool) -> Result<Credential, ApiError> {
        let fetched = match kind {
            Kind::AccessToken => self.fetch_token(force).await,
            Kind::JsapiTicket => self.fetch_ticket().await,
        };

        match fetched {
            Ok((value, expires_in)) => {
                let c = Credential {
                    value,
                    expires_at: unix_now() + expires_in,
                };
                self.store
                    .save_credential(kind.as_str(), &c.value, c.expires_at)
                    .await
                    .map_err(ApiError::from)?;
                tracing::info!(
                    kind = kind.as_str(),
                    expires_in,
                    forced = force,
                    "fetched a new credential"
                );
                self.remember(kind, &c);
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), errcode = e.errcode(), error = %e, "fetching a credential failed");
                self.store
                    .fail_credential(kind.as_str(), &e.to_string())
                    .await
                    .map_err(ApiError::from)?;
                Err(e)
            }
        }
    }

    async fn fetch_token(&self, force: bool) -> Result<(String, i64), ApiError> {
        let secret = self.secret.as_ref().ok_or(ApiError::NoSecret)?;
        let (answer, _): (TokenAnswer, _) = match self.api {
            TokenApi::Stable => {
                let body = serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": secret.expose(),
                    "force_refresh": force,
                });
                self.upstream
                    .post("/cgi-bin/stable_token", &[], &body)
                    .await?
            }
            TokenApi::Classic => {
                self.upstream
                    .get(
                        "/cgi-bin/token",
                        &[
                            ("grant_type", "client_credential"),
                            ("appid", &self.appid),
                            ("secret", secret.expose()),
                        ],
                    )
                    .await?
            }
        };
        Ok((answer.access_token, answer.expires_in))
    }

    /// The ticket needs the access_token.
    async fn fetch_ticket(&self) -> Result<(String, i64), ApiError> {
        let (t, _) = self
            .with_access_token(|token| async move {
                self.upstream
                    .get::<TicketAnswer>(
                        "/cgi-bin/ticket/getticket",
                        &[("access_token", &token), ("type", "jsapi")],
                    )
                    .await
            })
            .await?;
        Ok((t.ticket, t.expires_in))
    }

    /// One call with the access_token; when WeChat refuses the token (docs/wechat.md §7), it is renewed
    /// once and the call made again.
    pub(crate) async fn with_access_token<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut retried = false;
        loop {
            // Boxed: fetching the ticket comes here, and getting the token may fetch the ticket's token.
            let token = Box::pin(self.get(Kind::AccessToken)).await?;
            match call(token.value.clone()).await {
                Err(e) if e.is_stale_token() && !retried => {
                    retried = true;
                    self.refused(Kind::AccessToken, &token.value).await;
                }
                answer => return answer,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_renewals_back_off_to_ten_minutes() {
        let pauses: Vec<u64> = (1..=9).map(retry_pause).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 600, 600, 600]);
    }
}
