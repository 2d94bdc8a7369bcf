//! wxportal: a self-hosted server for WeChat Official Accounts.

pub mod wechat;
