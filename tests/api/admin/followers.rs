//! The follower list, its search, filters, export and detail page.

use super::*;

#[tokio::test]
async fn markup_in_nicknames_and_messages_renders_as_text() {
    let app = with_admin(&[]).await;
    let evil = "<script>alert(1)</script>";
    reply_to(&app, &text("oEvil", evil, "7001")).await;
    let tokens = wxportal::store::Tokens {
        scope: "snsapi_userinfo".into(),
        access_token: "ACCESS_TOKEN_SECRET_1".into(),
        access_token_expires_at: unix_now() + 7200,
        refresh_token: "REFRESH_TOKEN_SECRET_1".into(),
        refresh_token_expires_at: unix_now() + 86400,
    };
    let profile = wxportal::store::Profile {
        unionid: Some("uEvil".into()),
        nickname: evil.into(),
        sex: 1,
        province: "广东".into(),
        city: "\"><img src=x onerror=alert(1)>".into(),
        country: "中国".into(),
        headimgurl: "javascript:alert(1)".into(),
        privilege: "[]".into(),
        raw: format!(r#"{{"openid":"oEvil","nickname":"{evil}"}}"#),
    };
    app.store
        .save_refresh("oEvil", &tokens, Some(&profile))
        .await
        .unwrap();
    let (browser, _) = signed_in(&app).await;
    for path in [
        "/admin/users",
        "/admin/users/oEvil",
        "/admin/messages",
        "/admin/messages/1",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} has raw markup"
        );
        assert!(!page.body.contains("<img src=x"), "{path} has raw markup");
        assert!(
            !page.body.contains("=\"javascript:"),
            "{path} links javascript:"
        );
        assert!(unescape(&page.body).contains(evil), "{path} shows the text");
    }
    // Tokens are credentials: the detail page shows that they exist, never what they are.
    let detail = browser.get("/admin/users/oEvil").await.body;
    assert!(
        !detail.contains("ACCESS_TOKEN_SECRET_1") && !detail.contains("REFRESH_TOKEN_SECRET_1")
    );
    assert!(detail.contains("uEvil") && detail.contains("广东"));
}

#[tokio::test]
async fn the_follower_list_searches_filters_sorts_and_pages() {
    let app = with_admin(&[]).await;
    seed_users(&app, 130, |i| {
        if i == 77 {
            "张三丰 100%_".into()
        } else {
            format!("粉丝{i}")
        }
    })
    .await;
    let (browser, _) = signed_in(&app).await;

    let openids = |body: &str| -> Vec<String> {
        body.match_indices("href=\"/admin/users/o")
            .map(|(at, _)| body[at + 19..at + 19 + 28].to_owned())
            .collect()
    };
    // Every page, following the next links: each follower once, most recently seen first.
    let mut seen = Vec::new();
    let mut path = "/admin/users".to_owned();
    loop {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200);
        // The count is on the first page only.
        assert_eq!(
            page.body.contains("<span id=\"matching\">130</span>"),
            seen.is_empty(),
            "{path}"
        );
        seen.extend(openids(&page.body));
        let Some(at) = page.body.find("id=\"next-page\"") else {
            break;
        };
        let href = page.body[..at].rfind("href=\"").unwrap() + 6;
        path = page.body[href..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 130);
    let mut expected: Vec<(i64, String)> = (0..130)
        .map(|i| (1_700_000_000 + (i * 7919) % 100_000, openid(i as usize)))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected.into_iter().map(|e| e.1).collect::<Vec<_>>());

    // Search: part of a nickname (wildcards literal), a whole OpenID, a whole UnionID.
    for (q, want) in [
        ("100%_", openid(77)),
        (&openid(42), openid(42)),
        (&unionid(5), openid(5)),
    ] {
        let page = browser
            .get(&format!("/admin/users?q={}", urlencoding::encode(q)))
            .await;
        assert_eq!(openids(&page.body), vec![want.to_owned()], "{q}");
    }
    // `_` is not a wildcard: 粉_ would match every 粉丝N.
    let page = browser.get("/admin/users?q=%E7%B2%89_").await;
    assert!(openids(&page.body).is_empty(), "_ is not a wildcard");

    // Filters, and the count of matches.
    let page = browser
        .get("/admin/users?subscribed=no&authorized=userinfo&sort=first_seen_asc")
        .await;
    let rows = openids(&page.body);
    let want: Vec<String> = (0..130)
        .filter(|i| i % 3 == 0 && i % 2 == 0)
        .map(openid)
        .collect();
    assert_eq!(rows, want);
    assert!(
        page.body
            .contains(&format!("<span id=\"matching\">{}</span>", want.len()))
    );
}

#[tokio::test]
async fn csv_export_of_ten_thousand_followers_parses_back() {
    let app = with_admin(&[]).await;
    let nickname = |i: usize| match i % 5 {
        0 => format!("李雷{i} 😀"),
        1 => format!("say \"hi\", {i}"),
        2 => format!("two\nlines {i}"),
        3 => format!("=1+{i}"),
        _ => format!("plain{i}"),
    };
    seed_users(&app, 10_000, nickname).await;
    let (browser, _) = signed_in(&app).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    let response = client
        .get(app.url("/admin/users.csv"))
        .header("cookie", browser.cookie().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"followers-")
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a byte-order mark for Excel");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(reader.headers().unwrap().get(0), Some("openid"));
    let mut rows = 0;
    let mut openids = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        let i: usize = record[0][5..].parse().unwrap();
        let want = nickname(i);
        let want = if want.starts_with('=') {
            format!("'{want}")
        } else {
            want
        };
        assert_eq!(&record[2], want, "row {i}");
        assert_eq!(&record[1], unionid(i));
        assert_eq!(&record[7], if i.is_multiple_of(3) { "0" } else { "1" });
        assert_eq!(&record[6], "深圳");
        openids.insert(record[0].to_owned());
        rows += 1;
    }
    assert_eq!((rows, openids.len()), (10_000, 10_000));

    // The export follows the list's filter.
    let filtered = client
        .get(app.url("/admin/users.csv?subscribed=no"))
        .header("cookie", browser.cookie().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let count = csv::Reader::from_reader(&filtered[3..]).records().count();
    assert_eq!(count, (0..10_000).filter(|i| i % 3 == 0).count());
}

#[tokio::test]
async fn the_detail_page_shows_everything_and_deletes_on_confirmation() {
    let app = with_admin(&[]).await;
    reply_to(&app, &text("oDel", "第一条", "501")).await;
    reply_to(&app, &click("oDel", "MENU_1")).await;
    reply_to(&app, &text("oKeep", "别删我", "502")).await;
    let (browser, csrf) = signed_in(&app).await;
    let page = browser.get("/admin/users/oDel").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("第一条") && page.body.contains("EventKey=MENU_1"));
    assert!(page.body.contains("/admin/messages?openid=oDel"));
    assert_eq!(browser.get("/admin/users/oNobody").await.status, 404);

    // Unconfirmed: nothing happens.
    let page = browser
        .post_form("/admin/users/oDel/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    assert!(app.store.user("oDel").await.unwrap().is_some());
    let page = browser
        .post_form(
            "/admin/users/oDel/delete",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/admin/users"))
    );
    assert!(app.store.user("oDel").await.unwrap().is_none());
    assert_eq!(
        app.message_count().await,
        1,
        "their messages went with them, nobody else's"
    );
    assert_eq!(browser.get("/admin/users/oDel").await.status, 404);
}

#[tokio::test]
async fn a_nickname_search_follows_renames_and_deletions_and_ignores_letter_case() {
    let app = with_admin(&[]).await;
    seed_users(&app, 200, |i| match i {
        77 => "Alice Wonder".into(),
        78 => "ALICE木兰".into(),
        _ => format!("粉丝{i}"),
    })
    .await;
    let (browser, _) = signed_in(&app).await;
    let search = |q: &'static str| {
        let browser = &browser;
        async move {
            let page = browser
                .get(&format!("/admin/users?q={}", urlencoding::encode(q)))
                .await;
            assert_eq!(page.status, 200);
            let mut found: Vec<String> = page
                .body
                .match_indices("href=\"/admin/users/o")
                .map(|(at, _)| page.body[at + 19..at + 19 + 28].to_owned())
                .collect();
            found.sort();
            let matching = page
                .body
                .split("<span id=\"matching\">")
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .map(str::to_owned);
            (found, matching)
        }
    };
    // Three characters or more: the trigram index; fewer: the follower index. Both ignore ASCII case.
    assert_eq!(search("alice").await.0, vec![openid(77), openid(78)]);
    assert_eq!(search("木兰").await.0, vec![openid(78)]);
    let (found, matching) = search("丝12").await;
    assert_eq!(found.len(), 11, "粉丝12 and 粉丝120–129");
    assert_eq!(matching.as_deref(), Some("11"));
    let (found, matching) = search("丝1").await;
    assert_eq!(found.len(), 50, "one page");
    assert_eq!(matching.as_deref(), Some("111"), "粉丝1, 10–19 and 100–199");

    // A new nickname is found under its new name only; a deleted follower is found no more.
    let tokens = wxportal::store::Tokens {
        scope: "snsapi_userinfo".into(),
        access_token: "at".into(),
        access_token_expires_at: 0,
        refresh_token: "rt".into(),
        refresh_token_expires_at: 0,
    };
    let profile = wxportal::store::Profile {
        unionid: None,
        nickname: "Zed Rename".into(),
        sex: 0,
        province: String::new(),
        city: String::new(),
        country: String::new(),
        headimgurl: String::new(),
        privilege: "[]".into(),
        raw: "{}".into(),
    };
    app.store
        .save_refresh(&openid(77), &tokens, Some(&profile))
        .await
        .unwrap();
    assert_eq!(search("ALICE").await.0, vec![openid(78)]);
    assert_eq!(search("zed").await.0, vec![openid(77)]);
    // Signing in again with the same nickname, or with none (the base scope keeps the stored one),
    // leaves the follower found under it by both indexes.
    for again in [Some(&profile), None] {
        app.store
            .save_refresh(&openid(77), &tokens, again)
            .await
            .unwrap();
        assert_eq!(search("zed").await.0, vec![openid(77)]);
        assert_eq!(search("Ze").await.0, vec![openid(77)]);
    }
    app.raw_db()
        .await
        .execute(&format!(
            "DELETE FROM users WHERE openid = '{}'",
            openid(78)
        ))
        .await;
    assert!(search("alice").await.0.is_empty());
    assert!(search("木兰").await.0.is_empty());
}

#[tokio::test]
async fn the_match_count_stops_at_a_thousand() {
    let app = with_admin(&[]).await;
    seed_users(&app, 1_200, |i| format!("粉丝{i}")).await;
    let (browser, _) = signed_in(&app).await;
    let count = |path: &'static str| {
        let browser = &browser;
        async move {
            let page = browser.get(path).await;
            page.body
                .split("<span id=\"matching\">")
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .map(str::to_owned)
        }
    };
    assert_eq!(count("/admin/users").await.as_deref(), Some("1000+"));
    // 粉丝1, 10–19, 100–199 and 1000–1199: 311, counted exactly.
    assert_eq!(
        count("/admin/users?q=%E4%B8%9D1").await.as_deref(),
        Some("311")
    );
}
