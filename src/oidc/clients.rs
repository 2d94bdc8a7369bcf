//! Registering the apps that sign followers in: ids, secrets (shown once, stored hashed) and redirect
//! URIs, checked as RFC 9700 §2.1 and RFC 8252 §7 ask: exact strings, no fragment, no wildcard, https
//! (or http on loopback, or an app's own reverse-DNS scheme).

use super::{hash, random_token};
use crate::store::{Client, Store, StoreError, Subject};
use crate::time::unix_now;

/// Redirect URIs an app may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// The longest redirect URI accepted.
pub const MAX_URI_LEN: usize = 512;
/// The longest app name.
pub const MAX_NAME_CHARS: usize = 64;

/// Why an app could not be registered or changed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("no client {0:?}")]
    NotFound(String),
    #[error("client {0:?} is public: it has no secret")]
    Public(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an operator asks for.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub consent: bool,
    pub subject_openid: bool,
}

/// A registered app with its secret, which is shown this once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Registered {
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub consent: bool,
    pub subject: &'static str,
}

/// Whether `uri` may be registered as a redirect URI; the reason when not.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!("{uri:?} is longer than {MAX_URI_LEN} characters"));
    }
    let parsed = reqwest::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(format!("{uri:?} has a fragment (#…), which OAuth forbids"));
    }
    if uri.contains('*') {
        return Err(format!("{uri:?} has a wildcard: URIs are matched exactly"));
    }
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "{uri:?} is plain http: use https (http only on localhost)"
        )),
        // A native app's private-use scheme is a reverse domain name (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!(
            "{uri:?} must be https, http on localhost, or an app's reverse-DNS scheme"
        )),
    }
}

/// A new client id: short, random, safe in any URL.
fn new_client_id() -> String {
    let bytes: [u8; 9] = rand::random();
    format!("wxc_{}", hex::encode(bytes))
}

/// Registers an app and returns its id and (for a confidential app) its secret.
pub async fn create(store: &Store, new: NewClient) -> Result<Registered, ClientError> {
    let name = new.name.trim().to_owned();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        problems.push(format!("the name must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if new.redirect_uris.is_empty() {
        problems.push("at least one redirect URI is needed".to_owned());
    }
    if new.redirect_uris.len() > MAX_REDIRECT_URIS
        || new.post_logout_redirect_uris.len() > MAX_REDIRECT_URIS
    {
        problems.push(format!("at most {MAX_REDIRECT_URIS} URIs of each kind"));
    }
    for uri in new
        .redirect_uris
        .iter()
        .chain(&new.post_logout_redirect_uris)
    {
        if let Err(problem) = check_redirect_uri(uri) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(ClientError::Invalid(problems.join("; ")));
    }
    let secret = (!new.public).then(random_token);
    let client = Client {
        client_id: new_client_id(),
        name,
        secret_hash: secret.as_deref().map(hash),
        redirect_uris: dedup(new.redirect_uris),
        post_logout_redirect_uris: dedup(new.post_logout_redirect_uris),
        consent: new.consent,
        subject: if new.subject_openid {
            Subject::Openid
        } else {
            Subject::Pairwise
        },
        created_at: unix_now(),
        secret_rotated_at: None,
    };
    if !store.create_client(&client).await? {
        return Err(ClientError::Invalid(
            "that client id is taken; try again".into(),
        ));
    }
    Ok(registered(client, secret))
}

/// Gives a confidential app a new secret; the old one stops working at once.
pub async fn rotate_secret(store: &Store, client_id: &str) -> Result<Registered, ClientError> {
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| ClientError::NotFound(client_id.to_owned()))?;
    if client.is_public() {
        return Err(ClientError::Public(client_id.to_owned()));
    }
    let secret = random_token();
    if !store.set_client_secret(client_id, &hash(&secret)).await? {
        return Err(ClientError::NotFound(client_id.to_owned()));
    }
    Ok(registered(client, Some(secret)))
}

/// An app as listed (no secret).
pub fn describe(client: Client) -> Registered {
    registered(client, None)
}

fn registered(client: Client, secret: Option<String>) -> Registered {
    Registered {
        public: client.is_public(),
        client_id: client.client_id,
        client_secret: secret,
        name: client.name,
        redirect_uris: client.redirect_uris,
        post_logout_redirect_uris: client.post_logout_redirect_uris,
        consent: client.consent,
        subject: client.subject.as_str(),
    }
}

fn dedup(mut uris: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    uris.retain(|u| seen.insert(u.clone()));
    uris
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_an_app_scheme() {
        for ok in [
            "https://shop.example.com/cb",
            "https://shop.example.com/cb?x=1",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "com.example.shop:/oauth",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://shop.example.com/cb",
            "https://shop.example.com/cb#frag",
            "https://*.example.com/cb",
            "/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
