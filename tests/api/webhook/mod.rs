//! The webhook over loopback: URL verification, every message type in every mode, encryption, retries.

use std::sync::Arc;
use std::time::Duration;

use wxportal::cli::send::SendMessage;
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;
use wxportal::wechat::XmlFields;
use wxportal::wechat::push::{self, verification_query};

use crate::helpers::*;

mod crypto;
mod messages;
mod retries;
mod verification;
