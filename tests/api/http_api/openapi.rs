//! The OpenAPI 3.1 document at `/api/v1/openapi.json`, checked against the real responses: every
//! operation is called into each status it documents, and each answer must match its schema; an answer
//! with a status the document does not list fails.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use wxportal::demo::wechat::templates::TEMPLATES;

use super::write::{with_wechat, wrote};
use super::{Reply, call, token};
use crate::helpers::*;
use crate::mock::Scripted;

struct Document {
    doc: Value,
    /// (method, path template, status) checked so far.
    seen: BTreeSet<(String, String, String)>,
}

impl Document {
    async fn fetch(app: &TestApp) -> Self {
        let response = app
            .client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        // Every schema is valid JSON Schema 2020-12 (OpenAPI 3.1's dialect).
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            jsonschema::validator_for(&Self::rooted(&doc, schema))
                .unwrap_or_else(|e| panic!("schema {name}: {e}"));
        }
        Self {
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// `schema` with the document's components beside it, so `#/components/...` references resolve.
    fn rooted(doc: &Value, schema: &Value) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"],
            "allOf": [schema],
        })
    }

    /// Checks `reply` to `method template` against the document.
    fn check(&mut self, method: &str, template: &str, reply: &Reply) {
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let status = reply.status.to_string();
        let documented = &operation["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which the document does not list: {}",
            reply.json
        );
        let schema = &documented["content"]["application/json"]["schema"];
        let validator = jsonschema::validator_for(&Self::rooted(&self.doc, schema)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&reply.json)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: {errors:?} in {}",
            reply.json
        );
        if let Some(headers) = documented["headers"].as_object() {
            for name in headers.keys() {
                if name != "Idempotent-Replayed" {
                    assert!(reply.headers.contains_key(name.as_str()), "{name} missing");
                }
            }
        }
        self.seen
            .insert((method.into(), template.into(), status.clone()));
    }

    /// Every (method, template, status) the document lists.
    fn listed(&self) -> BTreeSet<(String, String, String)> {
        let mut all = BTreeSet::new();
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in operation["responses"].as_object().unwrap().keys() {
                    all.insert((method.clone(), template.clone(), status.clone()));
                }
            }
        }
        all
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_answer_is_produced_and_matches_its_schema() {
    let (app, mock) = with_wechat(&[]).await;
    let mut doc = Document::fetch(&app).await;
    let who = "oApiOpenApi00000000000000001";
    wrote(&app, who).await;
    crate::admin::seed_users(&app, 1, |_| "从未留言".into()).await;
    let silent = crate::admin::openid(0);
    let (_, all) = token(
        &app,
        "followers:read,messages:read,messages:send,templates:send,qr:write",
    );
    let (_, none) = token(&app, "followers:read");
    let (_, no_followers) = token(&app, "messages:read");

    // 401 and 403 on every operation.
    let operations: Vec<(String, String, String)> = doc.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(template, item)| {
            item.as_object().unwrap().iter().map(|(method, op)| {
                let scope = op["security"][0]["bearer"][0].as_str().unwrap().to_owned();
                (method.clone(), template.clone(), scope)
            })
        })
        .collect();
    for (method, template, scope) in &operations {
        let path = format!(
            "/api/v1{}",
            template.replace("{openid}", who).replace("{id}", "1")
        );
        let method_of = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method == "post").then_some("{}");
        let wrong = if scope == "followers:read" {
            &no_followers
        } else {
            &none
        };
        for token in [None, Some(wrong.as_str())] {
            let reply = call(&app, method_of.clone(), &path, token, body, &[]).await;
            doc.check(method, template, &reply);
        }
    }

    let get = |path: String| {
        let (app, all) = (&app, all.clone());
        async move { call(app, Method::GET, &path, Some(&all), None, &[]).await }
    };
    let post = |path: &str, body: String, key: Option<&'static str>| {
        let (app, all, path) = (&app, all.clone(), path.to_owned());
        async move { super::post(app, &path, Some(&all), &body, key).await }
    };

    for (path, template) in [
        ("/followers".to_owned(), "/followers"),
        ("/followers?limit=0".into(), "/followers"),
        (format!("/followers/{who}"), "/followers/{openid}"),
        ("/followers/oNobody".into(), "/followers/{openid}"),
        (
            format!("/followers/{who}/messages"),
            "/followers/{openid}/messages",
        ),
        (
            format!("/followers/{who}/messages?before=x"),
            "/followers/{openid}/messages",
        ),
        (
            "/followers/oNobody/messages".into(),
            "/followers/{openid}/messages",
        ),
        ("/answers/0".into(), "/answers/{id}"),
        ("/campaigns/0".into(), "/campaigns/{id}"),
        ("/qr-codes/0".into(), "/qr-codes/{id}"),
    ] {
        let reply = get(format!("/api/v1{path}")).await;
        doc.check("get", template, &reply);
    }

    // Answers.
    let answers = format!("/api/v1/followers/{who}/answers");
    let answered = post(&answers, json!({"text": "好"}).to_string(), Some("a1")).await;
    doc.check("post", "/followers/{openid}/answers", &answered);
    for (body, key) in [
        (json!({"text": "另一条"}), Some("a1")),
        (json!({"text": 1}), None),
    ] {
        let reply = post(&answers, body.to_string(), key).await;
        doc.check("post", "/followers/{openid}/answers", &reply);
    }
    for path in [
        "/api/v1/followers/oNobody/answers".to_owned(),
        format!("/api/v1/followers/{silent}/answers"),
    ] {
        let reply = post(&path, json!({"text": "好"}).to_string(), None).await;
        doc.check("post", "/followers/{openid}/answers", &reply);
    }
    let id = answered.json["id"].as_i64().unwrap();
    doc.check(
        "get",
        "/answers/{id}",
        &get(format!("/api/v1/answers/{id}")).await,
    );

    // Template messages and their campaigns.
    let message = json!({"template_id": TEMPLATES[0].0, "to": who, "data": {"first": "到货了"}});
    let sent = post("/api/v1/templates/send", message.to_string(), Some("t1")).await;
    doc.check("post", "/templates/send", &sent);
    let reused = json!({"template_id": TEMPLATES[0].0, "to": who, "data": {"first": "改了"}});
    for (body, key) in [(reused, Some("t1")), (json!({"to": who}), None)] {
        let reply = post("/api/v1/templates/send", body.to_string(), key).await;
        doc.check("post", "/templates/send", &reply);
    }
    mock.script(
        "/cgi-bin/template/get_all_private_template",
        Scripted::Errcode(45009),
    );
    let unknown = json!({"template_id": "not-stored", "to": who, "data": {"first": "x"}});
    let upstream = post("/api/v1/templates/send", unknown.to_string(), None).await;
    doc.check("post", "/templates/send", &upstream);
    let id = sent.json["id"].as_i64().unwrap();
    doc.check(
        "get",
        "/campaigns/{id}",
        &get(format!("/api/v1/campaigns/{id}")).await,
    );

    // QR codes.
    let created = post(
        "/api/v1/qr-codes",
        json!({"name": "海报"}).to_string(),
        Some("q1"),
    )
    .await;
    doc.check("post", "/qr-codes", &created);
    for (body, key) in [
        (json!({"name": "别的"}), Some("q1")),
        (json!({"name": ""}), None),
    ] {
        let reply = post("/api/v1/qr-codes", body.to_string(), key).await;
        doc.check("post", "/qr-codes", &reply);
    }
    mock.script("/cgi-bin/qrcode/create", Scripted::Errcode(45009));
    let refused = post(
        "/api/v1/qr-codes",
        json!({"name": "满了"}).to_string(),
        None,
    )
    .await;
    doc.check("post", "/qr-codes", &refused);
    let id = created.json["id"].as_i64().unwrap();
    doc.check(
        "get",
        "/qr-codes/{id}",
        &get(format!("/api/v1/qr-codes/{id}")).await,
    );
    app.stop().await;

    // 429, from a server whose tokens may call once a minute.
    let limited = TestApp::spawn(&[("WXPORTAL_LIMIT_API", "1/1m")]).await;
    let (_, once) = token(&limited, "followers:read");
    for _ in 0..2 {
        let reply = call(
            &limited,
            Method::GET,
            "/api/v1/followers",
            Some(&once),
            None,
            &[],
        )
        .await;
        doc.check("get", "/followers", &reply);
    }
    limited.stop().await;

    let missing: Vec<_> = doc
        .listed()
        .difference(&doc.seen)
        .filter(|(_, _, status)| status != "429")
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
    assert!(doc.seen.iter().any(|(_, _, status)| status == "429"));
}
