//! What the account says: the operator's reply rules, cached in memory so that answering a message
//! never waits for the database.
//!
//! An edit in the admin area reloads this instance's cache at once; other instances sharing the
//! database notice the bumped revision within [`WATCH_INTERVAL`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::bot::BotRule;
use crate::store::{MatchMode, ReplyRule, RuleKind, Store, StoreError};
use crate::wechat::{Event, Inbound, MessageKind, Reply};

/// How often an instance checks whether another one edited the rules.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Stands for the portal's guide page in a rule's reply.
pub(crate) const GUIDE_URL: &str = "{guide_url}";

/// The rules as the webhook consults them.
#[derive(Debug, Default)]
struct RuleSet {
    revision: i64,
    welcome: Option<Answer>,
    default: Option<Answer>,
    /// Tried in order; keywords lower-cased.
    keywords: Vec<(MatchMode, String, Answer)>,
    clicks: HashMap<String, Answer>,
    /// Rules bound to a QR code, by scene.
    scenes: HashMap<String, Answer>,
}

/// A rule's reply, and whether it is slow: delivered after the 5-second window, through the outbox.
/// With a bot, the answer is the bot's and `reply` the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reply: Reply,
    pub slow: bool,
    pub bot: Option<BotRule>,
}

/// The account's replies: the rule cache and where to reload it from.
#[derive(Debug)]
pub struct Replies {
    store: Store,
    guide_url: String,
    rules: RwLock<Arc<RuleSet>>,
}

impl Replies {
    /// Loads the rules; `public_url` is the portal's base URL, which `{guide_url}` stands for.
    pub async fn load(store: Store, public_url: &str) -> Result<Arc<Self>, StoreError> {
        let replies = Arc::new(Self {
            store,
            guide_url: format!("{public_url}/"),
            rules: RwLock::new(Arc::default()),
        });
        replies.reload().await?;
        Ok(replies)
    }

    /// Reads the rules again: after an edit, or when another instance bumped the revision.
    pub(crate) async fn reload(&self) -> Result<(), StoreError> {
        // The revision first: an edit landing between the two reads is picked up by the next check.
        let revision = self.store.rules_revision().await?;
        let rows = self.store.reply_rules().await?;
        let set = self.compile(revision, rows);
        *self.rules.write().expect("rule cache poisoned") = Arc::new(set);
        Ok(())
    }

    fn compile(&self, revision: i64, rows: Vec<ReplyRule>) -> RuleSet {
        let mut set = RuleSet {
            revision,
            ..RuleSet::default()
        };
        for row in rows.into_iter().filter(|r| r.enabled) {
            let Some(reply) = self.reply_of(&row) else {
                continue;
            };
            let reply = Answer {
                reply,
                slow: row.slow,
                bot: row.bot_url.clone().map(|url| BotRule {
                    url,
                    budget: Duration::from_millis(row.bot_budget_ms.clamp(0, 4000) as u64),
                }),
            };
            if let Some(key) = &row.click_key {
                set.clicks.insert(key.clone(), reply.clone());
            }
            if let Some(scene) = &row.qr_scene {
                set.scenes.insert(scene.clone(), reply.clone());
            }
            match row.kind {
                RuleKind::Welcome => set.welcome = Some(reply),
                RuleKind::Default => set.default = Some(reply),
                RuleKind::Keyword => {
                    let keyword = row.keyword.as_deref().map(str::trim).unwrap_or_default();
                    if !keyword.is_empty() {
                        set.keywords
                            .push((row.match_mode, keyword.to_lowercase(), reply));
                    }
                }
            }
        }
        set
    }

    /// A rule's reply with `{guide_url}` filled in; `None` (and a log line) if the stored JSON is broken.
    fn reply_of(&self, rule: &ReplyRule) -> Option<Reply> {
        let guide = serde_json::to_string(&self.guide_url).unwrap_or_default();
        let json = rule.reply.replace(GUIDE_URL, guide.trim_matches('"'));
        match serde_json::from_str(&json) {
            Ok(reply) => Some(reply),
            Err(e) => {
                tracing::error!(rule = rule.id, error = %e, "a stored reply rule is unreadable; skipped");
                None
            }
        }
    }

    /// Chooses the answer to `msg`, or `None` for `success` (nothing to say). Reads only memory.
    pub async fn reply_to(&self, msg: &Inbound) -> Option<Answer> {
        let rules = Arc::clone(&self.rules.read().expect("rule cache poisoned"));
        match &msg.kind {
            // A subscribe through a code with a bound rule gets that rule instead of the welcome.
            MessageKind::Event(Event::Subscribe { scene, .. }) => scene
                .as_ref()
                .and_then(|s| rules.scenes.get(s))
                .or(rules.welcome.as_ref())
                .cloned(),
            MessageKind::Event(Event::Scan { scene, .. }) => rules.scenes.get(scene).cloned(),
            MessageKind::Event(Event::Click { key }) => rules.clicks.get(key).cloned(),
            MessageKind::Event(_) => None,
            MessageKind::Text { content, .. } => {
                let text = content.trim().to_lowercase();
                rules
                    .keywords
                    .iter()
                    .find(|(mode, keyword, _)| match mode {
                        MatchMode::Exact => text == *keyword,
                        MatchMode::Contains => text.contains(keyword.as_str()),
                    })
                    .map(|(_, _, reply)| reply.clone())
                    .or_else(|| rules.default.clone())
            }
            _ => rules.default.clone(),
        }
    }

    /// Reloads whenever another instance edits the rules: one small query per interval, never one per
    /// message.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tick.tick().await;
            let cached = self.rules.read().expect("rule cache poisoned").revision;
            match self.store.rules_revision().await {
                Ok(revision) if revision != cached => {
                    if let Err(e) = self.reload().await {
                        tracing::warn!(error = %e, "reloading reply rules failed");
                    } else {
                        tracing::info!(revision, "reply rules reloaded after an edit elsewhere");
                    }
                }
                Ok(_) => {}
                Err(_) if self.store.is_closed() => return,
                Err(e) => tracing::warn!(error = %e, "checking the reply rules' revision failed"),
            }
        }
    }
}
