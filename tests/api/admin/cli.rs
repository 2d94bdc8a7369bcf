//! `wxportal admin`: operators managed from the command line.

use super::*;

fn wxportal_admin(args: &[&str], db: &str, stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxportal"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env("WXPORTAL_DATABASE_URL", db)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_accounts_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("admins.db").display());
    let (ok, out) = wxportal_admin(&["list"], &db, "");
    assert!(ok, "{out}");
    assert!(out.contains("no admins yet"));
    let (ok, out) = wxportal_admin(&["create", "ops"], &db, "short\n");
    assert!(!ok && out.contains("at least 10 characters"), "{out}");
    let (ok, out) = wxportal_admin(&["create", "ops"], &db, "a long enough password\n");
    assert!(ok, "{out}");
    let (ok, out) = wxportal_admin(&["create", "OPS"], &db, "a long enough password\n");
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = wxportal_admin(&["create", "bad name"], &db, "a long enough password\n");
    assert!(!ok && out.contains("letters, digits"), "{out}");
    let (ok, out) = wxportal_admin(&["list"], &db, "");
    assert!(ok && out.contains("ops") && out.contains("never"), "{out}");

    // The stored hash is argon2id, and the password signs in on a server using that database.
    let app = TestApp::spawn(&[("WXPORTAL_DATABASE_URL", &db)]).await;
    let stored = app.store.admin_by_name("ops").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains("a long enough password"));
    let (_, page) = sign_in_as(&app, "ops", "a long enough password").await;
    assert_eq!(page.status, 303);

    let (ok, out) = wxportal_admin(&["passwd", "ops"], &db, "another good password\r\n");
    assert!(ok, "{out}");
    let (_, page) = sign_in_as(&app, "ops", "a long enough password").await;
    assert_eq!(page.status, 401);
    let (_, page) = sign_in_as(&app, "ops", "another good password").await;
    assert_eq!(page.status, 303);
    let (ok, out) = wxportal_admin(&["passwd", "nobody"], &db, "another good password\n");
    assert!(!ok && out.contains("no admin named"), "{out}");

    let (ok, out) = wxportal_admin(&["delete", "ops"], &db, "");
    assert!(ok, "{out}");
    let (ok, _) = wxportal_admin(&["delete", "ops"], &db, "");
    assert!(!ok);
    let (_, page) = sign_in_as(&app, "ops", "another good password").await;
    assert_eq!(page.status, 401);
}
