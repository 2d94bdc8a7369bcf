//! `wxportal copy`: every table from one database to another, either backend to either backend.
//!
//! Rows keep their keys (ids included) and are written with an upsert on the key, so a rerun rewrites
//! the same rows instead of adding them; PostgreSQL's identity sequences are moved past the copied ids.

use sqlx::{QueryBuilder, Row};

use super::{Db, Store, StoreError, on_pool};

/// How a column's values travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bool,
}
use Kind::{Bool, Int, Text};

/// One value of a row, typed as both backends decode and bind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

/// A table as copied: its key and its columns (the key's first).
struct Table {
    name: &'static str,
    key: &'static [&'static str],
    /// Whether `id` is an identity column on PostgreSQL (its sequence follows the copied ids).
    identity: bool,
    columns: &'static [(&'static str, Kind)],
}

/// Every table, in an order that respects their references (a job after its message).
const TABLES: &[Table] = &[
    Table {
        name: "settings",
        key: &["name"],
        identity: false,
        columns: &[("name", Text), ("value", Text)],
    },
    Table {
        name: "users",
        key: &["openid"],
        identity: false,
        columns: &[
            ("openid", Text),
            ("unionid", Text),
            ("nickname", Text),
            ("headimgurl", Text),
            ("subscribed", Bool),
            ("subscription_changed_at", Int),
            ("first_seen_at", Int),
            ("last_seen_at", Int),
            ("sex", Int),
            ("province", Text),
            ("city", Text),
            ("country", Text),
            ("privilege", Text),
            ("userinfo_json", Text),
            ("scope", Text),
            ("access_token", Text),
            ("access_token_expires_at", Int),
            ("refresh_token", Text),
            ("refresh_token_expires_at", Int),
            ("first_authorized_at", Int),
            ("last_authorized_at", Int),
            ("subscribe_time", Int),
            ("remark", Text),
            ("tags", Text),
            ("info_fetched_at", Int),
            ("qr_scene", Text),
        ],
    },
    Table {
        name: "messages",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("dedup_key", Text),
            ("openid", Text),
            ("account", Text),
            ("msg_type", Text),
            ("event", Text),
            ("msg_id", Text),
            ("created_at", Int),
            ("received_at", Int),
            ("fields", Text),
            ("raw_xml", Text),
            ("reply_xml", Text),
            ("encrypted", Bool),
            ("signature", Text),
            ("signed_at", Int),
        ],
    },
    Table {
        name: "outbox",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("openid", Text),
            ("message_id", Int),
            ("state", Text),
            ("attempts", Int),
            ("due_at", Int),
            ("claimed_by", Text),
            ("claimed_until", Int),
            ("created_at", Int),
            ("finished_at", Int),
            ("last_error", Text),
            ("sent", Text),
            ("payload", Text),
            ("author", Text),
            ("campaign_id", Int),
            ("msgid", Text),
            ("delivery", Text),
        ],
    },
    Table {
        name: "oauth_states",
        key: &["nonce"],
        identity: false,
        columns: &[
            ("nonce", Text),
            ("scope", Text),
            ("next", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("claimed_at", Int),
            ("code_hash", Text),
            ("outcome", Text),
            ("openid", Text),
            ("finished_at", Int),
        ],
    },
    Table {
        name: "admins",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("name", Text),
            ("password_hash", Text),
            ("created_at", Int),
            ("password_changed_at", Int),
            ("last_login_at", Int),
        ],
    },
    Table {
        name: "login_failures",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("account", Text),
            ("address", Text),
            ("at", Int),
        ],
    },
    Table {
        name: "reply_rules",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("position", Int),
            ("match_mode", Text),
            ("keyword", Text),
            ("click_key", Text),
            ("reply", Text),
            ("enabled", Bool),
            ("updated_at", Int),
            ("slow", Bool),
            ("qr_scene", Text),
        ],
    },
    Table {
        name: "credentials",
        key: &["kind"],
        identity: false,
        columns: &[
            ("kind", Text),
            ("value", Text),
            ("expires_at", Int),
            ("fetched_at", Int),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("last_error", Text),
            ("last_error_at", Int),
        ],
    },
    Table {
        name: "credential_fetches",
        key: &["day", "kind"],
        identity: false,
        columns: &[("day", Text), ("kind", Text), ("count", Int)],
    },
    Table {
        name: "templates",
        key: &["template_id"],
        identity: false,
        columns: &[
            ("template_id", Text),
            ("title", Text),
            ("primary_industry", Text),
            ("deputy_industry", Text),
            ("content", Text),
            ("example", Text),
            ("fetched_at", Int),
        ],
    },
    Table {
        name: "campaigns",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("template_id", Text),
            ("body", Text),
            ("audience", Text),
            ("state", Text),
            ("total", Int),
            ("rate", Int),
            ("created_by", Text),
            ("created_at", Int),
            ("finished_at", Int),
        ],
    },
    Table {
        name: "media",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("media_id", Text),
            ("url", Text),
            ("filename", Text),
            ("content_type", Text),
            ("size", Int),
            ("thumbnail", Text),
            ("created_by", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "qr_codes",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("name", Text),
            ("scene", Text),
            ("permanent", Bool),
            ("ticket", Text),
            ("url", Text),
            ("expires_at", Int),
            ("created_at", Int),
            ("created_by", Text),
        ],
    },
    Table {
        name: "qr_scans",
        key: &["id"],
        identity: true,
        columns: &[
            ("id", Int),
            ("scene", Text),
            ("openid", Text),
            ("subscribed", Bool),
            ("at", Int),
        ],
    },
    Table {
        name: "oidc_clients",
        key: &["client_id"],
        identity: false,
        columns: &[
            ("client_id", Text),
            ("name", Text),
            ("secret_hash", Text),
            ("redirect_uris", Text),
            ("post_logout_redirect_uris", Text),
            ("consent", Bool),
            ("subject", Text),
            ("created_at", Int),
            ("secret_rotated_at", Int),
        ],
    },
    Table {
        name: "oidc_keys",
        key: &["kid"],
        identity: false,
        columns: &[
            ("kid", Text),
            ("alg", Text),
            ("private_key", Text),
            ("public_jwk", Text),
            ("created_at", Int),
            ("retired_at", Int),
        ],
    },
    Table {
        name: "oidc_grants",
        key: &["id"],
        identity: false,
        columns: &[
            ("id", Text),
            ("client_id", Text),
            ("openid", Text),
            ("scope", Text),
            ("auth_time", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
        ],
    },
    Table {
        name: "api_idempotency",
        key: &["token_id", "key"],
        identity: false,
        columns: &[
            ("token_id", Text),
            ("key", Text),
            ("request_hash", Text),
            ("resource_id", Int),
            ("created_at", Int),
        ],
    },
    Table {
        name: "oidc_codes",
        key: &["code_hash"],
        identity: false,
        columns: &[
            ("code_hash", Text),
            ("client_id", Text),
            ("openid", Text),
            ("redirect_uri", Text),
            ("scope", Text),
            ("nonce", Text),
            ("code_challenge", Text),
            ("auth_time", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("redeemed_at", Int),
            ("grant_id", Text),
        ],
    },
    Table {
        name: "oidc_tokens",
        key: &["token_hash"],
        identity: false,
        columns: &[
            ("token_hash", Text),
            ("grant_id", Text),
            ("kind", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
        ],
    },
    Table {
        name: "oidc_consents",
        key: &["client_id", "openid"],
        identity: false,
        columns: &[
            ("client_id", Text),
            ("openid", Text),
            ("scope", Text),
            ("granted_at", Int),
        ],
    },
    Table {
        name: "api_tokens",
        key: &["id"],
        identity: false,
        columns: &[
            ("id", Text),
            ("name", Text),
            ("token_hash", Text),
            ("scopes", Text),
            ("created_at", Int),
            ("last_used_at", Int),
            ("revoked_at", Int),
        ],
    },
    Table {
        name: "sessions",
        key: &["id"],
        identity: false,
        columns: &[("id", Text), ("data", Text), ("expires_at", Int)],
    },
];

/// The tables whose rows only use makes (a fresh database has none).
const DATA_TABLES: &[&str] = &[
    "users",
    "messages",
    "outbox",
    "oauth_states",
    "admins",
    "sessions",
    "qr_codes",
    "qr_scans",
    "templates",
    "campaigns",
    "media",
    "oidc_clients",
    "oidc_grants",
    "oidc_codes",
    "oidc_tokens",
    "oidc_consents",
    "api_tokens",
    "api_idempotency",
];

/// Rows read and written at a time.
const PAGE: i64 = 500;

/// One table's rows in the source and, after the copy, in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

impl Store {
    /// Rows in `table`, one of the copied tables.
    async fn count_rows(&self, table: &Table) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT count(*) FROM ");
            query.push(table.name);
            query.build_query_scalar().fetch_one(pool).await?
        }))
    }

    /// Whether any table holds rows that only use makes (followers, messages, operators, sessions…).
    pub async fn holds_data(&self) -> Result<bool, StoreError> {
        for table in TABLES.iter().filter(|t| DATA_TABLES.contains(&t.name)) {
            if self.count_rows(table).await? > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One page of `table`'s rows in key order, after `after` (the last key of the previous page).
    async fn page(
        &self,
        table: &Table,
        after: Option<&[Cell]>,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        let key = table.key.join(", ");
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT ");
            query
                .push(columns.join(", "))
                .push(" FROM ")
                .push(table.name);
            if let Some(after) = after {
                query.push(format_args!(" WHERE ({key}) > ("));
                let mut keys = query.separated(", ");
                for cell in after {
                    match cell.clone() {
                        Cell::Int(v) => keys.push_bind(v),
                        Cell::Text(v) => keys.push_bind(v),
                        Cell::Bool(v) => keys.push_bind(v),
                    };
                }
                query.push(")");
            }
            query.push(format_args!(" ORDER BY {key} LIMIT {PAGE}"));
            let rows = query.build().fetch_all(pool).await?;
            let mut page = Vec::with_capacity(rows.len());
            for row in rows {
                let mut cells = Vec::with_capacity(columns.len());
                for (i, (_, kind)) in table.columns.iter().enumerate() {
                    cells.push(match kind {
                        Int => Cell::Int(row.try_get(i)?),
                        Text => Cell::Text(row.try_get(i)?),
                        Bool => Cell::Bool(row.try_get(i)?),
                    });
                }
                page.push(cells);
            }
            page
        }))
    }

    /// Writes rows of `table`, replacing those with the same key.
    async fn upsert(&self, table: &Table, rows: &[Vec<Cell>]) -> Result<(), StoreError> {
        let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !table.key.contains(c))
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            let mut query = QueryBuilder::new("INSERT INTO ");
            query
                .push(table.name)
                .push(" (")
                .push(columns.join(", "))
                .push(") ");
            query.push_values(rows, |mut values, row| {
                for cell in row {
                    match cell.clone() {
                        Cell::Int(v) => values.push_bind(v),
                        Cell::Text(v) => values.push_bind(v),
                        Cell::Bool(v) => values.push_bind(v),
                    };
                }
            });
            query.push(format_args!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                table.key.join(", "),
                updates.join(", ")
            ));
            query.build().execute(pool).await?.rows_affected()
        });
        Ok(())
    }

    /// Moves PostgreSQL's identity sequence of `table` past its highest id.
    async fn follow_ids(&self, table: &Table) -> Result<(), StoreError> {
        if let (Db::Postgres(pool), true) = (&self.db, table.identity) {
            let mut query = QueryBuilder::new("SELECT setval(pg_get_serial_sequence('");
            query
                .push(table.name)
                .push("', 'id'), coalesce(max(id), 0) + 1, false) FROM ")
                .push(table.name);
            query.build().execute(pool).await?;
        }
        Ok(())
    }

    /// Every row of every table, in key order: what a copy must reproduce.
    pub async fn snapshot(&self) -> Result<Vec<(&'static str, Vec<Vec<Cell>>)>, StoreError> {
        let mut tables = Vec::new();
        for table in TABLES {
            let mut rows = Vec::new();
            let mut after: Option<Vec<Cell>> = None;
            loop {
                let page = self.page(table, after.as_deref()).await?;
                let Some(last) = page.last() else { break };
                after = Some(last[..table.key.len()].to_vec());
                let full = page.len() as i64 == PAGE;
                rows.extend(page);
                if !full {
                    break;
                }
            }
            tables.push((table.name, rows));
        }
        Ok(tables)
    }
}

/// Copies every table of `from` into `to`, page by page, and counts both sides of each table after.
pub async fn copy(from: &Store, to: &Store) -> Result<Vec<TableCount>, StoreError> {
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let mut after: Option<Vec<Cell>> = None;
        loop {
            let page = from.page(table, after.as_deref()).await?;
            let Some(last) = page.last() else { break };
            after = Some(last[..table.key.len()].to_vec());
            to.upsert(table, &page).await?;
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        to.follow_ids(table).await?;
        counts.push(TableCount {
            table: table.name,
            source: from.count_rows(table).await?,
            target: to.count_rows(table).await?,
        });
    }
    Ok(counts)
}
