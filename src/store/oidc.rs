//! The OpenID Connect provider's rows: the apps (clients) that sign followers in through wxportal, the
//! keys ID tokens are signed with, authorization codes, grants with their tokens, and remembered consent.
//!
//! Codes and tokens are stored as SHA-256 hashes: the database never holds one that could be replayed.
//! Every single-use rule is one conditional `UPDATE`, so it holds across every instance on a database.

use super::{Store, StoreError, on_pool, per_backend, stored_as_text};
use crate::time::unix_now;

/// What an app's `sub` claim is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An identifier of this follower for this app only (OIDC Core §8.1): apps cannot join their users.
    Pairwise,
    /// The follower's OpenID itself, for an app that already keys its users by it.
    Openid,
}
stored_as_text!(Subject { Pairwise = "pairwise", Openid = "openid" });

/// An app registered to sign followers in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// Hex SHA-256 of the secret; `None` for a public client, which must use PKCE.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Followers are asked before their first sign-in to this app.
    pub consent: bool,
    pub subject: Subject,
    pub created_at: i64,
    pub secret_rotated_at: Option<i64>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    consent: bool,
    subject: Subject,
    created_at: i64,
    secret_rotated_at: Option<i64>,
}

impl From<ClientRow> for Client {
    fn from(row: ClientRow) -> Self {
        let uris = |json: &str| serde_json::from_str(json).unwrap_or_default();
        Self {
            redirect_uris: uris(&row.redirect_uris),
            post_logout_redirect_uris: uris(&row.post_logout_redirect_uris),
            client_id: row.client_id,
            name: row.name,
            secret_hash: row.secret_hash,
            consent: row.consent,
            subject: row.subject,
            created_at: row.created_at,
            secret_rotated_at: row.secret_rotated_at,
        }
    }
}

/// A key ID tokens are signed with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    /// PKCS#8, base64.
    pub private_key: String,
    /// The public half as a JWK (JSON).
    pub public_jwk: String,
    pub created_at: i64,
    /// Set when a newer key took over; the key stays published until its tokens have expired.
    pub retired_at: Option<i64>,
}

/// An authorization code as issued (hashed) and as the token endpoint finds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Code {
    pub code_hash: String,
    pub client_id: String,
    pub openid: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The PKCE `S256` challenge, when the app sent one.
    pub code_challenge: Option<String>,
    /// When the follower signed in to the portal (the ID token's `auth_time`).
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    pub grant_id: Option<String>,
}

/// What one sign-in (or its refreshes) allows an app: revoked as a whole.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub openid: String,
    pub scope: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// The two kinds of token a grant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}
stored_as_text!(TokenKind { Access = "access", Refresh = "refresh" });

/// A token as stored, with its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub kind: TokenKind,
    pub expires_at: i64,
    /// A refresh token already exchanged, or an access token revoked.
    pub used_at: Option<i64>,
    pub grant: Grant,
}

#[derive(sqlx::FromRow)]
struct TokenGrantRow {
    kind: TokenKind,
    token_expires_at: i64,
    used_at: Option<i64>,
    #[sqlx(flatten)]
    grant: Grant,
}

/// A new token's hash and expiry.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub hash: &'a str,
    pub expires_at: i64,
}

/// What redeeming a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The grant and its tokens are stored.
    Issued,
    /// The code was redeemed before (its grant, now revoked), or it has expired (`None`).
    Refused(Option<String>),
}

/// What exchanging a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The new tokens are stored; the old refresh token is spent.
    Issued,
    /// The token had been exchanged before: a replay, so its grant is now revoked.
    Replayed,
}

const TOKEN_GRANT: &str =
    "SELECT t.kind, t.expires_at AS token_expires_at, t.used_at, g.id, g.client_id,
        g.openid, g.scope, g.auth_time, g.created_at, g.expires_at, g.revoked_at
     FROM oidc_tokens t JOIN oidc_grants g ON g.id = t.grant_id WHERE t.token_hash = $1";

impl Store {
    /// Registers an app; false when its id is taken.
    pub async fn create_client(&self, client: &Client) -> Result<bool, StoreError> {
        Ok(self.insert_client(client, "ON CONFLICT DO NOTHING").await? == 1)
    }

    /// Registers an app or replaces its settings and secret (the demo's sample app, at each start).
    pub async fn put_client(&self, client: &Client) -> Result<(), StoreError> {
        self.insert_client(
            client,
            "ON CONFLICT (client_id) DO UPDATE SET name = excluded.name,
                 secret_hash = excluded.secret_hash, redirect_uris = excluded.redirect_uris,
                 post_logout_redirect_uris = excluded.post_logout_redirect_uris,
                 consent = excluded.consent, subject = excluded.subject",
        )
        .await?;
        Ok(())
    }

    async fn insert_client(
        &self,
        client: &Client,
        on_conflict: &'static str,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "INSERT INTO oidc_clients (client_id, name, secret_hash, redirect_uris,
                 post_logout_redirect_uris, consent, subject, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {on_conflict}"
        );
        let uris = |uris: &[String]| serde_json::to_string(uris).unwrap_or_default();
        let _turn = self.write_turn().await;
        // Only the two literal conflict clauses above are ever appended.
        Ok(on_pool!(self, |pool| sqlx::query(sqlx::AssertSqlSafe(
            sql.clone()
        ))
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(uris(&client.redirect_uris))
        .bind(uris(&client.post_logout_redirect_uris))
        .bind(client.consent)
        .bind(client.subject)
        .bind(client.created_at)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// One app by its client id.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row: Option<ClientRow> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM oidc_clients WHERE client_id = $1"
        )
        .bind(client_id)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(Client::from))
    }

    /// Every app, oldest first.
    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows: Vec<ClientRow> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM oidc_clients ORDER BY created_at, client_id"
        )
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(Client::from).collect())
    }

    /// Deletes an app with everything it was issued; false when there is none.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let deleted = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM oidc_clients WHERE client_id = $1"
        )
        .bind(client_id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(deleted == 1)
    }

    /// Replaces a confidential app's secret; false when there is no such app or it is public.
    pub async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, |pool| sqlx::query(
            "UPDATE oidc_clients SET secret_hash = $1, secret_rotated_at = $2
             WHERE client_id = $3 AND secret_hash IS NOT NULL"
        )
        .bind(secret_hash)
        .bind(unix_now())
        .bind(client_id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Every signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM oidc_keys ORDER BY created_at DESC, kid DESC"
        )
        .fetch_all(pool)
        .await?))
    }

    /// Stores `key`, retiring every other key when `retire_others` (a rotation), or only when no key is
    /// in use yet (the first start). Returns whether it was stored.
    pub async fn add_signing_key(
        &self,
        key: &KeyRow,
        retire_others: bool,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let active: i64 =
                sqlx::query_scalar("SELECT count(*) FROM oidc_keys WHERE retired_at IS NULL")
                    .fetch_one(&mut *tx)
                    .await?;
            if active > 0 && !retire_others {
                false
            } else {
                sqlx::query("UPDATE oidc_keys SET retired_at = $1 WHERE retired_at IS NULL")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO oidc_keys (kid, alg, private_key, public_jwk, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.private_key)
                .bind(&key.public_jwk)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                true
            }
        }))
    }

    /// Stores an authorization code (the follower signed in and, where asked, consented).
    pub async fn add_code(&self, code: &Code) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO oidc_codes (code_hash, client_id, openid, redirect_uri, scope, nonce,
                 code_challenge, auth_time, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.openid)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.nonce)
        .bind(&code.code_challenge)
        .bind(code.auth_time)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A code by its hash, redeemed or not.
    pub async fn code(&self, code_hash: &str) -> Result<Option<Code>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM oidc_codes WHERE code_hash = $1"
        )
        .bind(code_hash)
        .fetch_optional(pool)
        .await?))
    }

    /// Redeems a code once across every instance: marks it redeemed and stores `grant` with its two
    /// tokens, in one transaction. A code redeemed before revokes what its first redemption issued
    /// (RFC 6749 §4.1.2: the code was stolen, or the client is confused).
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        grant: &Grant,
        access: NewToken<'_>,
        refresh: NewToken<'_>,
    ) -> Result<Redeemed, StoreError> {
        let now = unix_now();
        let _turn = self.write_turn().await;
        let redeemed = on_pool!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            let won = sqlx::query(
                "UPDATE oidc_codes SET redeemed_at = $1, grant_id = $2
                 WHERE code_hash = $3 AND redeemed_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(&grant.id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                sqlx::query(
                    "INSERT INTO oidc_grants (id, client_id, openid, scope, auth_time, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&grant.id)
                .bind(&grant.client_id)
                .bind(&grant.openid)
                .bind(&grant.scope)
                .bind(grant.auth_time)
                .bind(grant.created_at)
                .bind(grant.expires_at)
                .execute(&mut *tx)
                .await?;
                sql::insert_tokens(&mut tx, &grant.id, access, refresh, now).await?;
                tx.commit().await?;
                Redeemed::Issued
            } else {
                let earlier: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT grant_id FROM oidc_codes WHERE code_hash = $1 AND redeemed_at IS NOT NULL",
                )
                .bind(code_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let earlier = earlier.flatten();
                if let Some(id) = &earlier {
                    sql::revoke(&mut tx, id, now).await?;
                }
                tx.commit().await?;
                Redeemed::Refused(earlier)
            }
        });
        Ok(redeemed)
    }

    /// A token by its hash, with its grant.
    pub async fn token_grant(&self, token_hash: &str) -> Result<Option<TokenGrant>, StoreError> {
        let row: Option<TokenGrantRow> = on_pool!(self, |pool| sqlx::query_as(TOKEN_GRANT)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|row| TokenGrant {
            kind: row.kind,
            expires_at: row.token_expires_at,
            used_at: row.used_at,
            grant: row.grant,
        }))
    }

    /// Exchanges a refresh token of `grant_id` once: spends it and stores the two new tokens. A token
    /// spent before is a replay (RFC 9700 §4.14.2): the whole grant is revoked.
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        grant_id: &str,
        access: NewToken<'_>,
        refresh: NewToken<'_>,
    ) -> Result<Rotated, StoreError> {
        let now = unix_now();
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            let won = sqlx::query(
                "UPDATE oidc_tokens SET used_at = $1
                 WHERE token_hash = $2 AND grant_id = $3 AND kind = 'refresh' AND used_at IS NULL",
            )
            .bind(now)
            .bind(token_hash)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                sql::insert_tokens(&mut tx, grant_id, access, refresh, now).await?;
            } else {
                sql::revoke(&mut tx, grant_id, now).await?;
            }
            tx.commit().await?;
            if won {
                Rotated::Issued
            } else {
                Rotated::Replayed
            }
        }))
    }

    /// Revokes a grant and so every token it holds.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool, sql| {
            let mut conn = pool.acquire().await?;
            sql::revoke(&mut conn, grant_id, unix_now()).await?;
        });
        Ok(())
    }

    /// Revokes one access token.
    pub async fn revoke_access_token(&self, token_hash: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE oidc_tokens SET used_at = $1 WHERE token_hash = $2 AND kind = 'access' AND used_at IS NULL"
        )
        .bind(unix_now())
        .bind(token_hash)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The scope a follower consented to for an app, if they did.
    pub async fn consent(
        &self,
        client_id: &str,
        openid: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT scope FROM oidc_consents WHERE client_id = $1 AND openid = $2"
        )
        .bind(client_id)
        .bind(openid)
        .fetch_optional(pool)
        .await?))
    }

    /// Remembers that a follower consented to `scope` for an app.
    pub async fn save_consent(
        &self,
        client_id: &str,
        openid: &str,
        scope: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO oidc_consents (client_id, openid, scope, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_id, openid) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at"
        )
        .bind(client_id)
        .bind(openid)
        .bind(scope)
        .bind(unix_now())
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Deletes what can no longer be used: codes a day after expiry, grants a day after they expired or
    /// were revoked (with their tokens), tokens past expiry, and keys a day after they were retired
    /// (longer than any ID token they signed lives).
    pub async fn delete_spent_oidc(&self) -> Result<u64, StoreError> {
        let now = unix_now();
        let day_ago = now - 86_400;
        let _turn = self.write_turn().await;
        let mut deleted = 0;
        for (sql, at) in [
            ("DELETE FROM oidc_codes WHERE expires_at < $1", day_ago),
            (
                "DELETE FROM oidc_grants WHERE expires_at < $1 OR revoked_at < $1",
                day_ago,
            ),
            ("DELETE FROM oidc_tokens WHERE expires_at < $1", now),
            ("DELETE FROM oidc_keys WHERE retired_at < $1", day_ago),
        ] {
            deleted += on_pool!(self, |pool| sqlx::query(sql)
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected());
        }
        Ok(deleted)
    }
}

per_backend! {
    /// A grant's new access and refresh tokens.
    pub(in crate::store) async fn insert_tokens(
        conn: &mut <Db as sqlx::Database>::Connection,
        grant_id: &str,
        access: NewToken<'_>,
        refresh: NewToken<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        for (kind, token) in [(TokenKind::Access, access), (TokenKind::Refresh, refresh)] {
            sqlx::query(
                "INSERT INTO oidc_tokens (token_hash, grant_id, kind, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.hash)
            .bind(grant_id)
            .bind(kind)
            .bind(now)
            .bind(token.expires_at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Revokes a grant (and so every token it holds).
    pub(in crate::store) async fn revoke(
        conn: &mut <Db as sqlx::Database>::Connection,
        grant_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE oidc_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
