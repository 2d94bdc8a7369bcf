//! Compatible and safe mode message encryption (docs/wechat.md §5): AES-256-CBC with the IV taken from the
//! key, a 32-byte PKCS#7 block, and the AppID appended to every plaintext.

use aes::Aes256;
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

/// WeChat pads to a multiple of 32 bytes, not the AES block size.
const PAD_BLOCK: usize = 32;

/// Real EncodingAESKeys end in a character with non-zero trailing bits, which a strict decoder rejects.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const STRICT: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a key or a ciphertext was refused. The names match the official sample's error codes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("EncodingAESKey must be exactly 43 characters of A-Z, a-z, 0-9 (got {0})")]
    KeyLength(usize),
    #[error("EncodingAESKey is not valid base64")]
    KeyEncoding,
    #[error("Encrypt is not valid base64")]
    Base64,
    #[error("ciphertext length is not a multiple of the AES block size")]
    BlockSize,
    #[error("bad padding")]
    Padding,
    #[error("the decrypted length field does not fit the message")]
    Length,
    #[error("AppID inside the message does not match ours")]
    AppId,
    #[error("the decrypted message is not UTF-8")]
    Utf8,
}

/// The 32-byte AES key decoded from an EncodingAESKey. Its Debug output never shows the key.
#[derive(Clone)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(***)")
    }
}

impl AesKey {
    /// Decodes `EncodingAESKey + "="` as WeChat does.
    pub fn from_encoding_aes_key(key: &str) -> Result<Self, CryptoError> {
        if key.len() != 43 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CryptoError::KeyLength(key.chars().count()));
        }
        let bytes = LENIENT
            .decode(format!("{key}="))
            .map_err(|_| CryptoError::KeyEncoding)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyEncoding)?;
        Ok(Self(bytes))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

/// Encrypts and decrypts messages for one AppID with one key.
#[derive(Debug, Clone)]
pub struct MessageCrypto {
    key: AesKey,
    appid: String,
}

impl MessageCrypto {
    pub fn new(key: AesKey, appid: impl Into<String>) -> Self {
        Self {
            key,
            appid: appid.into(),
        }
    }

    /// Encrypts `msg` with fresh random bytes.
    pub fn encrypt(&self, msg: &str) -> String {
        self.encrypt_with_random(msg, rand::random())
    }

    /// Encrypts `msg` with the given 16 random bytes (fixed only in known-answer tests).
    pub(crate) fn encrypt_with_random(&self, msg: &str, random: [u8; 16]) -> String {
        let body_len = 16 + 4 + msg.len() + self.appid.len();
        let pad = PAD_BLOCK - body_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(body_len + pad);
        buf.extend_from_slice(&random);
        buf.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        buf.extend_from_slice(msg.as_bytes());
        buf.extend_from_slice(self.appid.as_bytes());
        buf.resize(body_len + pad, pad as u8);
        let len = buf.len();
        cbc::Encryptor::<Aes256>::new(&self.key.0.into(), &self.key.iv().into())
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .expect("the buffer is a whole number of blocks");
        STRICT.encode(buf)
    }

    /// Decrypts an `Encrypt` value, checks the padding, the length and the AppID, and returns the message.
    pub fn decrypt(&self, encrypted: &str) -> Result<String, CryptoError> {
        let mut buf = STRICT
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::Base64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::BlockSize);
        }
        let plain = cbc::Decryptor::<Aes256>::new(&self.key.0.into(), &self.key.iv().into())
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::BlockSize)?;
        let pad = usize::from(*plain.last().ok_or(CryptoError::Padding)?);
        if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
            return Err(CryptoError::Padding);
        }
        let unpadded = &plain[..plain.len() - pad];
        if unpadded.len() < 20 {
            return Err(CryptoError::Length);
        }
        let len_bytes: [u8; 4] = unpadded[16..20].try_into().expect("four bytes");
        let msg_len = u32::from_be_bytes(len_bytes) as usize;
        let rest = &unpadded[20..];
        if msg_len > rest.len() {
            return Err(CryptoError::Length);
        }
        let (msg, appid) = rest.split_at(msg_len);
        if appid != self.appid.as_bytes() {
            return Err(CryptoError::AppId);
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::Utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn crypto(key: &str, appid: &str) -> MessageCrypto {
        MessageCrypto::new(AesKey::from_encoding_aes_key(key).unwrap(), appid)
    }

    #[test]
    fn vector_a_encrypts_with_the_official_fixed_random() {
        let c = crypto(KEY, "wxb11529c136998cb6");
        let out = c.encrypt_with_random("我是中文abcd123", *b"aaaabbbbccccdddd");
        assert_eq!(
            out,
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
        );
        assert_eq!(c.decrypt(&out).unwrap(), "我是中文abcd123");
    }

    #[test]
    fn vector_e_reply_direction_matches_the_official_document() {
        let c = crypto(&"A".repeat(43), "wx134c8103faa5a59e");
        let random: [u8; 16] = *b"999951349e8ee746";
        let out = c.encrypt_with_random(
            "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
            random,
        );
        assert_eq!(
            out,
            "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
        );
    }

    #[test]
    fn keys_with_trailing_bits_decode() {
        assert!(AesKey::from_encoding_aes_key(KEY).is_ok());
        assert!(AesKey::from_encoding_aes_key(&"A".repeat(43)).is_ok());
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        assert_eq!(
            AesKey::from_encoding_aes_key("short").unwrap_err(),
            CryptoError::KeyLength(5)
        );
        let with_plus = format!("{}+", &KEY[..42]);
        assert!(AesKey::from_encoding_aes_key(&with_plus).is_err());
    }

    #[test]
    fn a_message_for_another_appid_is_refused() {
        let ours = crypto(KEY, "wxb11529c136998cb6");
        let theirs = crypto(KEY, "wx0000000000000000");
        assert_eq!(
            ours.decrypt(&theirs.encrypt("hello")).unwrap_err(),
            CryptoError::AppId
        );
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let c = crypto(KEY, "wxb11529c136998cb6");
        assert_eq!(c.decrypt("not base64!").unwrap_err(), CryptoError::Base64);
        assert_eq!(c.decrypt("").unwrap_err(), CryptoError::BlockSize);
        assert_eq!(c.decrypt("AAAA").unwrap_err(), CryptoError::BlockSize);
        // 32 zero bytes decrypt to noise whose last byte is almost never a valid pad with a valid body.
        assert!(c.decrypt(&STRICT.encode([0u8; 32])).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn random_text(rng: &mut StdRng) -> String {
        let len = rng.random_range(0..600);
        (0..len)
            .map(|_| match rng.random_range(0..4) {
                0 => rng.random_range(' '..='~'),
                1 => rng.random_range('\u{4e00}'..='\u{9fa5}'),
                2 => rng.random_range('\u{1f600}'..='\u{1f64f}'),
                _ => ['<', '>', '&', ']', '\n', '\0'][rng.random_range(0..6)],
            })
            .collect()
    }

    #[test]
    fn any_message_round_trips_under_any_key() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let key: String = (0..43)
                .map(|_| {
                    let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                    chars[rng.random_range(0..chars.len())] as char
                })
                .collect();
            let appid = format!("wx{:016x}", rng.random::<u64>());
            let c = MessageCrypto::new(AesKey::from_encoding_aes_key(&key).unwrap(), appid);
            let msg = random_text(&mut rng);
            let enc = c.encrypt(&msg);
            assert_eq!(STRICT.decode(&enc).unwrap().len() % 32, 0);
            assert_eq!(c.decrypt(&enc).unwrap(), msg);
        }
    }

    #[test]
    fn corrupted_ciphertexts_are_refused_or_change_without_panicking() {
        let mut rng = StdRng::seed_from_u64(11);
        let c = MessageCrypto::new(
            AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap(),
            "wxb11529c136998cb6",
        );
        let mut refused = 0;
        for _ in 0..2000 {
            let msg = random_text(&mut rng);
            let mut raw = STRICT.decode(c.encrypt(&msg)).unwrap();
            match rng.random_range(0..3) {
                0 => {
                    let i = rng.random_range(0..raw.len());
                    raw[i] ^= 1 << rng.random_range(0..8);
                }
                1 => raw.truncate(rng.random_range(0..raw.len())),
                _ => raw.extend((0..rng.random_range(1..40)).map(|_| rng.random::<u8>())),
            }
            // CBC has no integrity: some corruptions decrypt to other text. msg_signature, checked before
            // decryption, is what rejects those; here the point is an error or a value, never a panic.
            if c.decrypt(&STRICT.encode(&raw)).is_err() {
                refused += 1;
            }
        }
        assert!(
            refused > 1500,
            "only {refused} of 2000 corruptions were refused"
        );
    }
}
