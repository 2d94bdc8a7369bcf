//! The WeChat Official Account protocol, with no HTTP framework inside: signatures, message encryption,
//! the inbound XML and its typed messages, and the passive-reply XML.

pub mod crypto;
pub mod message;
pub mod push;
pub mod reply;
pub mod signature;
pub mod xml;

pub use crypto::{AesKey, CryptoError, MessageCrypto};
pub use message::{Event, Inbound, MessageKind};
pub use reply::{Article, Reply};
pub use xml::{XmlError, XmlFields};

/// How the account's messages are protected, as chosen on the WeChat platform (docs/wechat.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageMode {
    /// 明文模式: no encryption.
    Plain,
    /// 兼容模式: encrypted body plus the plaintext fields; both kinds of request accepted.
    Compat,
    /// 安全模式: encrypted body only.
    Safe,
}

impl MessageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Compat => "compat",
            Self::Safe => "safe",
        }
    }
}

/// A message mode that is not `plain`, `compat` or `safe`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the message mode is plain, compat or safe (got {0:?})")]
pub struct UnknownMode(String);

impl std::str::FromStr for MessageMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        match s {
            "plain" => Ok(Self::Plain),
            "compat" => Ok(Self::Compat),
            "safe" => Ok(Self::Safe),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}
