//! Registering endpoints and rotating their secrets: the one way the command line and the admin area
//! both use.

use super::{EventType, signature};
use crate::store::{Store, StoreError};
use crate::time::unix_now;

/// The longest endpoint URL, in bytes.
pub const MAX_URL: usize = 2000;
/// How long a replaced secret keeps signing by default: a day to deploy the new one.
pub const DEFAULT_OVERLAP_HOURS: i64 = 24;

/// An endpoint just registered: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct Registered {
    pub id: i64,
    pub secret: String,
    pub events: Vec<EventType>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL or the event types are wrong: the sentence says how.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A URL wxportal may post to (an event endpoint, a bot): http or https with a host, no user name or
/// password (they would be stored and shown), no fragment; or the sentence saying what is wrong.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("a URL to post to is at most {MAX_URL} bytes"));
    }
    match reqwest::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() => {
            Err(format!("{url:?} is not an http:// or https:// URL"))
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            Err("a URL to post to may not carry a user name or password".into())
        }
        Ok(u) if u.fragment().is_some() => Err("a URL to post to may not have a #fragment".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{url:?} is not a URL: {e}")),
    }
}

/// An http(s) URL and known event types (comma-separated names, or `*` for all), or the sentence
/// saying what is wrong.
pub fn check(url: &str, events: &[String]) -> Result<Vec<EventType>, EndpointError> {
    let invalid = |s: String| Err(EndpointError::Invalid(s));
    check_url(url).map_err(EndpointError::Invalid)?;
    let mut types = Vec::new();
    for name in events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        if name == "*" {
            types.extend(EventType::ALL);
            continue;
        }
        match EventType::parse(name) {
            Some(t) => types.push(t),
            None => {
                return invalid(format!(
                    "unknown event type {name:?}; the types are {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ));
            }
        }
    }
    if types.is_empty() {
        return invalid("an endpoint needs at least one event type".into());
    }
    types.sort_by_key(|t| EventType::ALL.iter().position(|x| x == t));
    types.dedup();
    Ok(types)
}

/// Checks and stores an endpoint with a new secret.
pub async fn register(
    store: &Store,
    url: &str,
    description: &str,
    events: &[String],
) -> Result<Registered, EndpointError> {
    let events = check(url, events)?;
    let secret = signature::new_secret();
    let description: String = description.trim().chars().take(200).collect();
    let id = store
        .create_endpoint(url, &description, &events, &secret)
        .await?;
    Ok(Registered { id, secret, events })
}

/// Gives endpoint `id` a new secret; the old one keeps signing for `overlap_hours`. The new secret,
/// or `None` if there is no such endpoint.
pub async fn rotate_secret(
    store: &Store,
    id: i64,
    overlap_hours: i64,
) -> Result<Option<String>, StoreError> {
    let secret = signature::new_secret();
    let until = unix_now() + overlap_hours.clamp(0, 24 * 30) * 3600;
    Ok(store
        .rotate_endpoint_secret(id, &secret, until)
        .await?
        .then_some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_http_urls_and_known_types() {
        let types = check(
            "https://crm.example.com/hooks/wechat?k=1",
            &names(&["subscribe", "message", "message"]),
        )
        .unwrap();
        assert_eq!(types, [EventType::Message, EventType::Subscribe]);
        assert_eq!(
            check("http://127.0.0.1:9/x", &names(&["*"])).unwrap().len(),
            7
        );
    }

    #[test]
    fn refuses_what_cannot_be_delivered() {
        for (url, events) in [
            ("ftp://example.com/", "message"),
            ("javascript:alert(1)", "message"),
            ("not a url", "message"),
            ("https://user:pw@example.com/", "message"),
            ("https://example.com/#x", "message"),
            ("https://example.com/", "messages"),
            ("https://example.com/", ""),
        ] {
            assert!(
                matches!(
                    check(url, &names(&[events])),
                    Err(EndpointError::Invalid(_))
                ),
                "{url} {events}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(check(&long, &names(&["message"])).is_err());
    }
}
