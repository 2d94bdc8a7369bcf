//! Operators' names and passwords: the rules they keep and argon2id hashes (the crate's defaults:
//! 19 MiB, 2 passes) with a fresh salt each, in PHC format.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Longer passwords are refused before hashing.
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;
pub(crate) const MIN_PASSWORD_CHARS: usize = 10;

/// Why a name or password cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("an admin name is 1 to 64 letters, digits or _ . - @ (got {0:?})")]
    BadName(String),
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters (it has {0})")]
    TooShort(usize),
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// An argon2id hash of `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches `hash` (false for anything that is not a hash).
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Names are what operators type: letters, digits and `_ . - @`, up to 64.
pub(crate) fn check_name(name: &str) -> Result<(), PasswordError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(PasswordError::BadName(name.to_owned()))
    }
}

/// At least [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`] bytes.
pub(crate) fn check_password(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Err(PasswordError::TooShort(chars))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify(&a, "correct horse battery"));
        assert!(!verify(&a, "correct horse battery "));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("ops.lead@shop").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("李雷").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
