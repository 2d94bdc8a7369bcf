//! `/admin/menu`: the custom menu (3 buttons × 5 sub-buttons) edited as a form, checked against WeChat's
//! rules before anything is sent, pushed with `menu/create`, loaded from `get_current_selfmenu_info`,
//! deleted. The form is kept as a draft between visits. CLICK buttons show the reply rule bound to their
//! key.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::frame::{Frame, Nav};
use crate::upstream::menu::{Button, MAX_BUTTONS, MAX_SUB_BUTTONS, Menu, TYPES};
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// One row of the editor: a bar button (`sub` = 0) or a sub-button.
struct Row {
    /// Field-name prefix, `b1` or `b1s3`.
    prefix: String,
    label: String,
    name: String,
    kind: String,
    /// The key (click and the scan/photo/location types) or the web address (view, miniprogram).
    value: String,
    appid: String,
    pagepath: String,
}

/// A CLICK key and what answers it.
struct Binding {
    key: String,
    button: String,
    rule: Option<(i64, String)>,
}

#[derive(Template)]
#[template(path = "admin/menu.html")]
struct MenuTemplate {
    layout: Layout,
    nav: Nav,
    groups: Vec<Vec<Row>>,
    types: &'static [(&'static str, &'static str)],
    bindings: Vec<Binding>,
    problems: Vec<String>,
    notice: Option<String>,
}

fn prefix(i: usize, j: usize) -> String {
    if j == 0 {
        format!("b{i}")
    } else {
        format!("b{i}s{j}")
    }
}

fn row_of(i: usize, j: usize, b: Option<&Button>) -> Row {
    let b = b.cloned().unwrap_or_default();
    let kind = b.kind.clone().unwrap_or_default();
    let value = match kind.as_str() {
        "view" | "miniprogram" => b.url.clone(),
        _ => b.key.clone(),
    };
    Row {
        prefix: prefix(i, j),
        label: if j == 0 {
            format!("菜单 {i} · Button {i}")
        } else {
            format!("{i}.{j}")
        },
        name: b.name,
        kind,
        value: value.unwrap_or_default(),
        appid: b.appid.unwrap_or_default(),
        pagepath: b.pagepath.unwrap_or_default(),
    }
}

/// The editor's rows for `menu`: always 3 groups of 1 + 5 rows, empty ones blank.
fn rows(menu: &Menu) -> Vec<Vec<Row>> {
    (1..=MAX_BUTTONS)
        .map(|i| {
            let top = menu.button.get(i - 1);
            (0..=MAX_SUB_BUTTONS)
                .map(|j| {
                    let b = if j == 0 {
                        top
                    } else {
                        top.and_then(|t| t.sub_button.get(j - 1))
                    };
                    row_of(i, j, b)
                })
                .collect()
        })
        .collect()
}

/// The menu a posted form describes (blank rows left out).
fn menu_of(form: &HashMap<String, String>) -> Menu {
    let field = |p: &str, f: &str| {
        form.get(&format!("{p}_{f}"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let button = |p: &str| -> Option<Button> {
        let (name, kind, value) = (field(p, "name"), field(p, "type"), field(p, "value"));
        let (appid, pagepath) = (field(p, "appid"), field(p, "pagepath"));
        if name.is_empty() && kind.is_empty() && value.is_empty() {
            return None;
        }
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        let mut b = Button {
            name,
            kind: some(kind.clone()),
            ..Button::default()
        };
        match kind.as_str() {
            "" => {}
            "view" => b.url = some(value),
            "miniprogram" => {
                b.url = some(value);
                b.appid = some(appid);
                b.pagepath = some(pagepath);
            }
            _ => b.key = some(value),
        }
        Some(b)
    };
    let mut menu = Menu::default();
    for i in 1..=MAX_BUTTONS {
        let subs: Vec<Button> = (1..=MAX_SUB_BUTTONS)
            .filter_map(|j| button(&prefix(i, j)))
            .collect();
        match button(&prefix(i, 0)) {
            Some(mut top) => {
                // A type and sub-buttons together are kept, so the problem is named rather than the
                // sub-buttons silently lost.
                top.sub_button = subs;
                menu.button.push(top);
            }
            None if !subs.is_empty() => menu.button.push(Button {
                sub_button: subs,
                ..Button::default()
            }),
            None => {}
        }
    }
    menu
}

/// What the page says above the editor.
enum Said {
    Nothing,
    /// Something done, in green.
    Done(&'static str),
    /// Why nothing (more) was done, with the status that says whose side failed.
    Refused(StatusCode, Vec<String>),
}

impl Said {
    fn refused(status: StatusCode, problem: String) -> Self {
        Self::Refused(status, vec![problem])
    }
}

async fn page(app: &AppState, frame: Frame, menu: &Menu, said: Said) -> Result<Response, AppError> {
    let rules = app.store.reply_rules().await?;
    let bindings = menu
        .click_keys()
        .into_iter()
        .map(|(key, button)| Binding {
            key: key.to_owned(),
            button: button.to_owned(),
            rule: rules
                .iter()
                .find(|r| r.click_key.as_deref() == Some(key))
                .map(|r| {
                    (
                        r.id,
                        r.keyword
                            .clone()
                            .unwrap_or_else(|| r.kind.as_str().to_owned()),
                    )
                }),
        })
        .collect();
    let (status, problems, notice) = match said {
        Said::Nothing => (StatusCode::OK, Vec::new(), None),
        Said::Done(notice) => (StatusCode::OK, Vec::new(), Some(notice.to_owned())),
        Said::Refused(status, problems) => (status, problems, None),
    };
    let html = MenuTemplate {
        layout: frame.layout,
        nav: frame.nav,
        groups: rows(menu),
        types: &TYPES,
        bindings,
        problems,
        notice,
    };
    Ok((status, render(&html)?).into_response())
}

async fn draft(app: &AppState) -> Result<Menu, AppError> {
    let json = app.store.menu_draft().await?;
    Ok(serde_json::from_str(&json).unwrap_or_default())
}

async fn save_draft(app: &AppState, menu: &Menu) -> Result<(), AppError> {
    let json = serde_json::to_string(menu).expect("a menu serializes");
    Ok(app.store.save_menu_draft(&json).await?)
}

pub async fn show(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let menu = draft(&app).await?;
    page(&app, frame, &menu, Said::Nothing).await
}

/// Saves the form as the draft; with `action=push` also checks it and sends it to WeChat.
pub async fn save(
    State(app): State<AppState>,
    frame: Frame,
    body: Bytes,
) -> Result<Response, AppError> {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| AppError::bad_request("form", "the menu form is unreadable"))?;
    let menu = menu_of(&form);
    save_draft(&app, &menu).await?;
    let problems = menu.problems();
    let said = if form.get("action").map(String::as_str) != Some("push") {
        Said::Done("草稿已保存 · Draft saved (not yet sent to WeChat).")
    } else if !problems.is_empty() {
        Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, problems)
    } else {
        match app.account.create_menu(&menu).await {
            Ok(()) => {
                tracing::info!(admin = %frame.nav.admin, "menu pushed to WeChat");
                Said::Done(
                    "已推送到微信 · Pushed: followers see the new menu within minutes (re-following shows it at once).",
                )
            }
            Err(e) => {
                tracing::warn!(errcode = e.errcode(), error = %e, "pushing the menu failed");
                Said::refused(
                    StatusCode::BAD_GATEWAY,
                    format!("微信拒绝了菜单 · WeChat refused the menu: {e}"),
                )
            }
        }
    };
    page(&app, frame, &menu, said).await
}

/// Replaces the draft with the menu followers see now.
pub async fn load(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let (menu, said) = match app.account.current_menu().await {
        Ok(current) => {
            let menu = current.to_menu();
            save_draft(&app, &menu).await?;
            let notice = if current.is_menu_open == 1 || !menu.button.is_empty() {
                "已读取微信上的当前菜单 · Loaded the menu followers see now."
            } else {
                "微信上目前没有菜单 · WeChat has no menu for this account now."
            };
            (menu, Said::Done(notice))
        }
        Err(e) => (
            draft(&app).await?,
            Said::refused(
                StatusCode::BAD_GATEWAY,
                format!("读取失败 · Loading failed: {e}"),
            ),
        ),
    };
    page(&app, frame, &menu, said).await
}

/// Deletes the menu on WeChat (the draft stays, to push again later). Needs the confirmation box.
pub async fn delete(
    State(app): State<AppState>,
    frame: Frame,
    body: Bytes,
) -> Result<Response, AppError> {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let menu = draft(&app).await?;
    let said = if form.get("confirm").map(String::as_str) != Some("yes") {
        Said::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请勾选确认框 · Tick the box to confirm deleting the menu.".into(),
        )
    } else {
        match app.account.delete_menu().await {
            Ok(()) => {
                tracing::info!(admin = %frame.nav.admin, "menu deleted on WeChat");
                Said::Done(
                    "已删除微信上的菜单（草稿仍保留）· Deleted on WeChat; the draft is kept.",
                )
            }
            Err(e) => Said::refused(
                StatusCode::BAD_GATEWAY,
                format!("删除失败 · Deleting failed: {e}"),
            ),
        }
    };
    page(&app, frame, &menu, said).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_round_trips_a_menu() {
        let menu: Menu = serde_json::from_str(
            r#"{"button":[{"type":"click","name":"今日","key":"TODAY"},
               {"name":"更多","sub_button":[{"type":"view","name":"官网","url":"https://example.com/"},
               {"type":"miniprogram","name":"小程序","url":"https://example.com/","appid":"wx1","pagepath":"pages/index"}]}]}"#,
        )
        .unwrap();
        let mut form = HashMap::new();
        for group in rows(&menu) {
            for row in group {
                for (f, v) in [
                    ("name", &row.name),
                    ("type", &row.kind),
                    ("value", &row.value),
                    ("appid", &row.appid),
                    ("pagepath", &row.pagepath),
                ] {
                    form.insert(format!("{}_{f}", row.prefix), v.clone());
                }
            }
        }
        assert_eq!(menu_of(&form), menu);
    }
}
