//! Who the client is (its address, as the trusted proxy saw it) and how often it may call the routes
//! anyone can reach: per-client rates kept in memory, answered with `429` and `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Config, Rate};
use crate::web::error::AppError;

/// The most clients one limit remembers (a few MB).
const MAX_CLIENTS: usize = 100_000;
/// The key every client shares while a limit remembers [`MAX_CLIENTS`].
const OVERFLOW: &str = "(overflow)";

/// The client's address, as a rate or lockout key: the value the configured proxy header's last hop
/// appended (the one a client cannot choose), else the connection's peer. IPv6 addresses are grouped
/// by /64, the block one subscriber gets.
pub(crate) fn client_key(
    header: Option<&HeaderName>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> String {
    let from_proxy = header.and_then(|name| {
        // The proxy appends to what the client sent: the rightmost value of the last header line.
        let line = headers.get_all(name).iter().next_back()?;
        let value = line.to_str().ok()?.rsplit(',').next()?.trim();
        value.parse::<IpAddr>().ok()
    });
    group(from_proxy.unwrap_or_else(|| peer.ip()))
}

fn group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// One per-client rate.
#[derive(Debug)]
pub struct Keyed {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Keyed {
    fn new(rate: Option<Rate>) -> Self {
        let limiter = rate.map(|r| {
            let count = NonZeroU32::new(r.count).unwrap_or(NonZeroU32::MIN);
            let step = (r.per / count.get()).max(Duration::from_millis(1));
            let quota = Quota::with_period(step)
                .expect("a period of at least a millisecond")
                .allow_burst(count);
            RateLimiter::keyed(quota)
        });
        Self { limiter }
    }

    /// Takes one request from `key`'s allowance, or says how many seconds until the next one.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // Past the bound every client shares one allowance until idle ones are forgotten: memory stays
        // bounded, and a flood from very many addresses slows itself down with everyone else.
        let key = if limiter.len() >= MAX_CLIENTS {
            OVERFLOW.to_owned()
        } else {
            key.to_owned()
        };
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose allowance is full again.
    fn tidy(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Every per-client rate of the process.
#[derive(Debug)]
pub struct Limits {
    pub auth_login: Keyed,
    pub auth_callback: Keyed,
    pub code_exchange: Keyed,
    pub admin_login: Keyed,
    pub jssdk: Keyed,
    /// Per API token, not per address.
    pub api: Keyed,
    /// The proxy header that names the client, if one is trusted ([`client_key`]).
    pub client_ip_header: Option<HeaderName>,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        let rates = &config.limits;
        Self {
            auth_login: Keyed::new(rates.auth_login),
            auth_callback: Keyed::new(rates.auth_callback),
            code_exchange: Keyed::new(rates.code_exchange),
            admin_login: Keyed::new(rates.admin_login),
            jssdk: Keyed::new(rates.jssdk),
            api: Keyed::new(rates.api),
            client_ip_header: config.client_ip_header.clone(),
        }
    }

    /// Who the client of `request` is, as the limits count it.
    pub fn client(&self, headers: &HeaderMap, peer: SocketAddr) -> String {
        client_key(self.client_ip_header.as_ref(), headers, peer)
    }

    /// Drops idle clients every minute, so memory follows the clients active now.
    pub(crate) async fn tidy_regularly(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            for keyed in [
                &self.auth_login,
                &self.auth_callback,
                &self.code_exchange,
                &self.admin_login,
                &self.jssdk,
                &self.api,
            ] {
                keyed.tidy();
            }
        }
    }
}

/// Which limit a route is under.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    AuthLogin,
    AuthCallback,
    AdminLogin,
    Jssdk,
}

/// Middleware: refuses a client over its rate for the route with `429` and `Retry-After`.
pub async fn limit(
    State((limits, route)): State<(Arc<Limits>, Route)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let key = limits.client(request.headers(), peer);
    let keyed = match route {
        Route::AuthLogin => &limits.auth_login,
        Route::AuthCallback => &limits.auth_callback,
        Route::AdminLogin => &limits.admin_login,
        Route::Jssdk => &limits.jssdk,
    };
    // Only the sign-in form's POST is limited, not the page that shows it.
    let applies =
        !matches!(route, Route::AdminLogin) || request.method() == axum::http::Method::POST;
    match applies.then(|| keyed.check(&key)) {
        Some(Err(retry_after)) => {
            tracing::warn!(?route, client = key, retry_after, "rate limit reached");
            AppError::TooMany { retry_after }.into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 1234)
    }

    #[test]
    fn the_proxy_header_is_read_from_the_right() {
        let name = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        headers.append(&name, "6.6.6.6, 1.2.3.4".parse().unwrap());
        assert_eq!(
            client_key(Some(&name), &headers, peer("10.0.0.1")),
            "1.2.3.4"
        );
        headers.append(&name, "5.6.7.8".parse().unwrap());
        assert_eq!(
            client_key(Some(&name), &headers, peer("10.0.0.1")),
            "5.6.7.8"
        );
        // Junk or no header: the peer.
        let mut junk = HeaderMap::new();
        junk.append(&name, "not an address".parse().unwrap());
        assert_eq!(client_key(Some(&name), &junk, peer("10.0.0.1")), "10.0.0.1");
        assert_eq!(client_key(None, &headers, peer("10.0.0.1")), "10.0.0.1");
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        let a = client_key(None, &HeaderMap::new(), peer("2001:db8:1:2::1"));
        let b = client_key(None, &HeaderMap::new(), peer("2001:db8:1:2:ffff::9"));
        let c = client_key(None, &HeaderMap::new(), peer("2001:db8:1:3::1"));
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_key(None, &HeaderMap::new(), peer("::ffff:1.2.3.4")),
            "1.2.3.4"
        );
    }

    #[test]
    fn a_rate_allows_its_burst_then_says_when_to_come_back() {
        let keyed = Keyed::new(Some(Rate {
            count: 3,
            per: Duration::from_secs(60),
        }));
        for _ in 0..3 {
            assert_eq!(keyed.check("a"), Ok(()));
        }
        let wait = keyed.check("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(keyed.check("b"), Ok(()), "another client is not affected");
        assert_eq!(Keyed::new(None).check("a"), Ok(()));
    }
}
