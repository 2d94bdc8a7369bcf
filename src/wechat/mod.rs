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
