//! Making a token: the one way the command line and the admin area both use. The token is returned
//! once; only its SHA-256 is stored.

use super::{SCOPES, TOKEN_PREFIX};
use crate::store::{Store, StoreError};

/// The longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A token just made: the only time `token` is known.
#[derive(Debug, Clone)]
pub struct Issued {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name or the scopes are wrong: the sentence says how.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A name and known scopes, or the sentence saying what is wrong.
pub fn check(name: &str, scopes: &[String]) -> Result<(), TokenError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(TokenError::Invalid(format!(
            "a token's name is 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if scopes.is_empty() {
        return Err(TokenError::Invalid(
            "a token needs at least one scope".into(),
        ));
    }
    let known: Vec<&str> = SCOPES.iter().map(|(s, _)| *s).collect();
    if let Some(unknown) = scopes.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(TokenError::Invalid(format!(
            "unknown scope {unknown:?}; the scopes are {}",
            known.join(", ")
        )));
    }
    Ok(())
}

/// Checks, makes and stores a token named `name` with `scopes`.
pub async fn issue(store: &Store, name: &str, scopes: &[String]) -> Result<Issued, TokenError> {
    check(name, scopes)?;
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let id = hex::encode(rand::random::<[u8; 8]>());
    let token = format!("{TOKEN_PREFIX}{}", crate::oidc::random_token());
    let name = name.trim().to_owned();
    store
        .create_api_token(&id, &name, &crate::oidc::hash(&token), &scopes)
        .await?;
    Ok(Issued {
        id,
        name,
        scopes,
        token,
    })
}
