//! The keys ID tokens are signed with: ES256 (ECDSA over P-256 with SHA-256, RFC 7518 §3.4), generated
//! here and kept in the database so every instance signs with the same keys. The JWS compact form is
//! assembled here around `ring`'s signature (the crate already in the build for TLS): a JWT library
//! would bring a second set of curve implementations for three base64 segments.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::{Value, json};

use crate::store::{KeyRow, Store, StoreError};
use crate::time::unix_now;

/// The one signing algorithm.
pub const ALG: &str = "ES256";
/// How long a process signs with the key it loaded before looking for a newer one (a rotation made by
/// another process): the old key stays published meanwhile, so its tokens verify.
const RELOAD_AFTER: Duration = Duration::from_secs(30);

/// Why a key or a token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored signing key {0} cannot be read")]
    Unreadable(String),
    #[error("there is no signing key")]
    None,
}

/// A key pair ready to sign.
pub struct SigningKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, ***)", self.kid)
    }
}

impl SigningKey {
    /// A new key pair, as the row that stores it.
    pub fn generate() -> KeyRow {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system's random source works");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("a key just generated parses");
        let kid = {
            let id: [u8; 12] = rand::random();
            URL_SAFE_NO_PAD.encode(id)
        };
        let public = pair.public_key().as_ref();
        // An uncompressed point: 0x04 ‖ x ‖ y (SEC 1 §2.3.3).
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
            "use": "sig",
            "alg": ALG,
            "kid": kid,
        });
        KeyRow {
            kid,
            alg: ALG.to_owned(),
            private_key: STANDARD.encode(pkcs8.as_ref()),
            public_jwk: jwk.to_string(),
            created_at: unix_now(),
            retired_at: None,
        }
    }

    /// The key pair a stored row holds.
    pub fn from_row(row: &KeyRow) -> Result<Self, KeyError> {
        let unreadable = || KeyError::Unreadable(row.kid.clone());
        let pkcs8 = STANDARD
            .decode(&row.private_key)
            .map_err(|_| unreadable())?;
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| unreadable())?;
        Ok(Self {
            kid: row.kid.clone(),
            pair,
        })
    }

    /// `claims` as a signed JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": ALG, "typ": "JWT", "kid": self.kid});
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), jwt.as_bytes())
            .expect("signing with a valid key succeeds");
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        jwt
    }
}

/// The published half of every key: the JWKS document (RFC 7517 §5).
pub fn jwks(rows: &[KeyRow]) -> Value {
    let keys: Vec<Value> = rows
        .iter()
        .filter_map(|row| serde_json::from_str(&row.public_jwk).ok())
        .collect();
    json!({ "keys": keys })
}

/// Why a JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("signed with an algorithm other than ES256")]
    Algorithm,
    #[error("signed with a key that is not published")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
}

/// The claims of `jwt` if it is signed by one of the keys of `jwks` (a JWKS document); no claim is
/// checked here.
pub fn verify(jwt: &str, jwks: &Value) -> Result<Value, JwtError> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Malformed)
    };
    let header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| JwtError::Malformed)?;
    if header["alg"] != ALG {
        return Err(JwtError::Algorithm);
    }
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .ok_or(JwtError::UnknownKey)?;
    let coordinate = |name: &str| {
        key[name]
            .as_str()
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .filter(|c| c.len() == 32)
            .ok_or(JwtError::UnknownKey)
    };
    let mut point = vec![0x04];
    point.extend(coordinate("x")?);
    point.extend(coordinate("y")?);
    let signed = &jwt[..jwt.len() - signature.len() - 1];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| JwtError::Signature)?;
    serde_json::from_slice(&decode(payload)?).map_err(|_| JwtError::Malformed)
}

/// The key this process signs with, reloaded from the database now and then.
#[derive(Debug)]
pub struct Keyring {
    store: Store,
    current: RwLock<(Instant, Arc<SigningKey>)>,
}

impl Keyring {
    /// Loads the newest key, generating the first one if the database has none (instances starting
    /// together may each add one; every key stored is published, so each verifies).
    pub async fn load(store: Store) -> Result<Self, KeyError> {
        let key = match newest(&store).await {
            Ok(key) => key,
            Err(KeyError::None) => {
                store
                    .add_signing_key(&SigningKey::generate(), false)
                    .await?;
                newest(&store).await?
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            store,
            current: RwLock::new((Instant::now(), Arc::new(key))),
        })
    }

    /// The key to sign with now.
    pub async fn signer(&self) -> Result<Arc<SigningKey>, KeyError> {
        let (loaded, key) = {
            let current = self
                .current
                .read()
                .expect("the keyring lock is never poisoned");
            (current.0, Arc::clone(&current.1))
        };
        if loaded.elapsed() < RELOAD_AFTER {
            return Ok(key);
        }
        let fresh = Arc::new(newest(&self.store).await?);
        *self
            .current
            .write()
            .expect("the keyring lock is never poisoned") = (Instant::now(), Arc::clone(&fresh));
        Ok(fresh)
    }

    /// Every published key, as a JWKS document (read from the database: a key another instance just
    /// added is published at once).
    pub async fn jwks(&self) -> Result<Value, KeyError> {
        Ok(jwks(&self.store.signing_keys().await?))
    }
}

/// The newest key not retired.
async fn newest(store: &Store) -> Result<SigningKey, KeyError> {
    let rows = store.signing_keys().await?;
    let row = rows
        .iter()
        .find(|row| row.retired_at.is_none())
        .ok_or(KeyError::None)?;
    SigningKey::from_row(row)
}

/// Makes a new key the one to sign with and retires the others (they stay published for a day).
pub async fn rotate(store: &Store) -> Result<KeyRow, KeyError> {
    let row = SigningKey::generate();
    store.add_signing_key(&row, true).await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_with_its_key_and_not_when_altered() {
        let row = SigningKey::generate();
        let key = SigningKey::from_row(&row).unwrap();
        let jwt = key.sign(&json!({"sub": "a", "n": 1}));
        let published = jwks(std::slice::from_ref(&row));
        assert_eq!(verify(&jwt, &published).unwrap()["sub"], "a");

        let other = jwks(&[SigningKey::generate()]);
        assert_eq!(verify(&jwt, &other), Err(JwtError::UnknownKey));
        let (rest, _) = jwt.rsplit_once('.').unwrap();
        let forged = format!("{rest}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
        assert_eq!(verify(&forged, &published), Err(JwtError::Signature));
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(json!({"sub": "b", "n": 1}).to_string());
        parts[1] = &payload;
        assert_eq!(
            verify(&parts.join("."), &published),
            Err(JwtError::Signature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(verify(&none, &published), Err(JwtError::Algorithm));
        assert_eq!(verify("a.b", &published), Err(JwtError::Malformed));
    }

    #[test]
    fn the_published_key_is_a_p256_jwk_without_its_private_part() {
        let row = SigningKey::generate();
        let jwk: Value = serde_json::from_str(&row.public_jwk).unwrap();
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        assert_eq!(jwk["kid"], row.kid.as_str());
        assert!(jwk.get("d").is_none());
    }
}
