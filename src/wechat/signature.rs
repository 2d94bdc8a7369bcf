//! `sha1(concat(sort(parts)))`: the signature of URL verification, of every POST and of `msg_signature`.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// The lowercase hex SHA-1 of the parts sorted byte-wise and concatenated (docs/wechat.md §2 and §5).
pub fn sign(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether `given` is the signature of `parts`, compared in constant time (case-insensitive hex).
pub fn verify(given: &str, parts: &[&str]) -> bool {
    let expected = sign(parts);
    let given = given.to_ascii_lowercase();
    // The length of a SHA-1 hex string is public; only the content comparison must not leak.
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published known answers for the plain signature (WeChat's sample Token, timestamp and nonce).
    #[test]
    fn published_plain_signatures_match() {
        let vectors = [
            (
                "test",
                "1410685589",
                "test",
                "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff",
            ),
            (
                "AAAAA",
                "1714037059",
                "486452656",
                "899cf89e464efb63f54ddac96b0a0a235f53aa78",
            ),
            (
                "spamtest",
                "1409735669",
                "1320562132",
                "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a",
            ),
        ];
        for (token, ts, nonce, expected) in vectors {
            assert_eq!(sign(&[token, ts, nonce]), expected);
            assert!(verify(expected, &[token, ts, nonce]));
            assert!(verify(&expected.to_uppercase(), &[token, ts, nonce]));
        }
    }

    #[test]
    fn a_signature_off_by_one_digit_fails() {
        assert!(!verify(
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe",
            &["test", "1410685589", "test"]
        ));
        assert!(!verify("", &["test", "1410685589", "test"]));
        assert!(!verify("f21891de", &["test", "1410685589", "test"]));
    }

    #[test]
    fn the_order_of_the_parts_does_not_matter() {
        assert_eq!(sign(&["b", "a", "c"]), sign(&["c", "b", "a"]));
    }
}
