//! User management in the console (admin only): list, add a user, change a role or a
//! password, delete a user (never the last admin), create and revoke API tokens (stored
//! hashed, the secret shown once). The users file is rewritten (what `rvs console passwd`
//! reads) and takes effect at once; viewers and operators are refused; CSRF and Origin
//! are checked; GET changes nothing; every step is audited.

mod common;

use common::*;
use rvs_console::users::{Role, Users};

fn users(c: &Console) -> Users {
    Users::load(&c.dir.join("users")).unwrap()
}

fn op(c: &Console, s: &Session, body: &str) -> Resp {
    c.form(
        "/users",
        &format!("csrf={}&{body}", s.csrf),
        Some(&s.cookie),
        None,
    )
}

/// Log in with a password other than the test users' own.
fn login_with(c: &Console, user: &str, password: &str) -> Session {
    let r = c.form(
        "/login",
        &format!("user={user}&password={password}"),
        None,
        None,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let who = c.req("GET", "/api/whoami", &[("Cookie", &cookie)], b"");
    let v: serde_json::Value = serde_json::from_str(&who.body).unwrap();
    Session {
        cookie,
        csrf: v["csrf"].as_str().unwrap().to_string(),
    }
}

fn page(c: &Console, s: &Session) -> Resp {
    c.req("GET", "/users", &[("Cookie", &s.cookie)], b"")
}

#[test]
fn viewers_and_operators_are_refused_and_get_changes_nothing() {
    let c = Console::start();
    let before = std::fs::read(c.dir.join("users")).unwrap();
    for user in ["vera", "alice"] {
        let s = c.login(user);
        assert_eq!(page(&c, &s).status, 403, "{user}");
        assert_eq!(
            c.req("GET", "/api/users", &[("Cookie", &s.cookie)], b"")
                .status,
            403
        );
        let r = op(&c, &s, "op=add&name=mallory&password=mallory-pw&role=admin");
        assert_eq!(r.status, 403, "{user}: {}", r.body);
        let r = c.post_json(
            &s,
            "/api/users",
            r#"{"op":"role","name":"alice","role":"admin"}"#,
        );
        assert_eq!(r.status, 403, "{user}");
    }
    // Operator and viewer API tokens too.
    for tok in ["rvs_optoken", "rvs_viewtoken"] {
        let r = c.req(
            "POST",
            "/api/users",
            &[
                ("Authorization", &format!("Bearer {tok}")),
                ("Content-Type", "application/json"),
            ],
            br#"{"op":"token","name":"t2","role":"admin"}"#,
        );
        assert_eq!(r.status, 403, "{tok}");
    }
    // An admin's GETs change nothing; a GET with the form's fields is no change either.
    let s = c.login("root");
    let p = page(&c, &s);
    assert_eq!(p.status, 200);
    assert!(p.body.contains("data-user=\"alice\""), "{}", p.body);
    assert!(p.body.contains("data-token=\"ops\""));
    assert!(!p.body.contains("argon2"), "no hash in the page");
    assert!(!p.body.contains("sha256"), "no digest in the page");
    let r = c.req(
        "GET",
        "/users?op=delete&name=alice",
        &[("Cookie", &s.cookie)],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = c.req("GET", "/api/users", &[("Cookie", &s.cookie)], b"");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        v["users"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "alice", "role": "operator"}))
    );
    assert_eq!(std::fs::read(c.dir.join("users")).unwrap(), before);
    assert!(!c.audit().contains("\"action\":\"users"), "{}", c.audit());
}

#[test]
fn csrf_and_origin_are_checked() {
    let c = Console::start();
    let before = std::fs::read(c.dir.join("users")).unwrap();
    let s = c.login("root");
    let body = "op=add&name=mallory&password=mallory-pw&role=admin";
    assert_eq!(c.form("/users", body, Some(&s.cookie), None).status, 403);
    let wrong = format!("csrf={}&{body}", "0".repeat(64));
    assert_eq!(c.form("/users", &wrong, Some(&s.cookie), None).status, 403);
    let foreign = format!("csrf={}&{body}", s.csrf);
    assert_eq!(
        c.form(
            "/users",
            &foreign,
            Some(&s.cookie),
            Some("http://evil.example")
        )
        .status,
        403
    );
    let r = c.req(
        "POST",
        "/api/users",
        &[
            ("Cookie", &s.cookie),
            ("Content-Type", "application/json"),
            ("Origin", &c.origin()),
        ],
        br#"{"op":"add","name":"mallory","password":"mallory-pw","role":"admin"}"#,
    );
    assert_eq!(r.status, 403, "JSON without the CSRF header");
    assert_eq!(std::fs::read(c.dir.join("users")).unwrap(), before);
}

#[test]
fn admins_manage_users_and_tokens() {
    let c = Console::start();
    let s = c.login("root");

    // Add a user: in the file at once, and able to log in.
    let r = op(
        &c,
        &s,
        "op=add&name=olga&password=olga-password&role=operator",
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(users(&c).user_role("olga"), Some(Role::Operator));
    let o = c.login("olga");
    assert_eq!(page(&c, &o).status, 403);
    assert!(page(&c, &s).body.contains("user olga (operator) added"));
    // A short password, a bad name, a bad role, a second olga: refused.
    assert_eq!(
        op(&c, &s, "op=add&name=pat&password=short&role=viewer").status,
        400
    );
    assert_eq!(
        op(&c, &s, "op=add&name=a%20b&password=long-enough&role=viewer").status,
        400
    );
    assert_eq!(
        op(&c, &s, "op=add&name=pat&password=long-enough&role=root").status,
        400
    );
    assert_eq!(
        op(&c, &s, "op=add&name=olga&password=long-enough&role=viewer").status,
        409
    );

    // Promote olga: her session ends (she logs in again, as admin now).
    let r = op(&c, &s, "op=role&name=olga&role=admin");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(users(&c).user_role("olga"), Some(Role::Admin));
    assert_eq!(
        c.req("GET", "/api/whoami", &[("Cookie", &o.cookie)], b"")
            .status,
        401
    );
    let o = c.login("olga");
    assert_eq!(page(&c, &o).status, 200);

    // A new password works; the old one no longer does.
    let r = op(&c, &s, "op=password&name=olga&password=olga-new-password");
    assert_eq!(r.status, 303);
    let f = c.form("/login", "user=olga&password=olga-password", None, None);
    assert_ne!(f.status, 303);

    // The last admin is neither demoted nor deleted: with root and olga, root may go.
    let r = c.post_json(&s, "/api/users", r#"{"op":"delete","name":"root"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(users(&c).user_role("root"), None);
    let s = login_with(&c, "olga", "olga-new-password");
    let r = c.post_json(
        &s,
        "/api/users",
        r#"{"op":"role","name":"olga","role":"viewer"}"#,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = c.post_json(&s, "/api/users", r#"{"op":"delete","name":"olga"}"#);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(users(&c).user_role("olga"), Some(Role::Admin));
    assert_eq!(
        c.post_json(&s, "/api/users", r#"{"op":"delete","name":"nobody"}"#)
            .status,
        404
    );

    // A token: its secret shown once, stored hashed, usable at once with its role.
    let r = op(&c, &s, "op=token&name=ci&role=viewer");
    assert_eq!(r.status, 303);
    let shown = page(&c, &s).body;
    let i = shown.find("it is shown only now: ").unwrap() + 22;
    let secret = shown[i..i + 68].to_string();
    assert!(secret.starts_with("rvs_"), "{secret}");
    assert!(!page(&c, &s).body.contains(&secret), "shown once");
    let file = std::fs::read_to_string(c.dir.join("users")).unwrap();
    assert!(!file.contains(&secret), "stored hashed");
    assert_eq!(
        users(&c).verify_token(&secret),
        Some(("ci".into(), Role::Viewer))
    );
    let bearer = format!("Bearer {secret}");
    assert_eq!(
        c.req("GET", "/api/snapshot", &[("Authorization", &bearer)], b"")
            .status,
        200
    );
    // Through the JSON API, an admin token's answer carries the secret.
    let r = c.req(
        "POST",
        "/api/users",
        &[
            ("Authorization", "Bearer rvs_admintoken"),
            ("Content-Type", "application/json"),
        ],
        br#"{"op":"token","name":"deploy","role":"operator"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let deploy = v["token"].as_str().unwrap().to_string();
    assert_eq!(
        users(&c).verify_token(&deploy),
        Some(("deploy".into(), Role::Operator))
    );

    // Revoked: refused at once.
    let r = op(&c, &s, "op=revoke&name=ci");
    assert_eq!(r.status, 303);
    assert_eq!(
        c.req("GET", "/api/snapshot", &[("Authorization", &bearer)], b"")
            .status,
        401
    );
    assert_eq!(users(&c).token_role("ci"), None);

    // The file is still one `rvs console passwd` reads (mode 0600), and a restarted
    // console takes it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(c.dir.join("users"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let d = c.restart();
    login_with(&d, "olga", "olga-new-password");

    let audit = c.audit();
    for step in [
        "\"action\":\"users add\",\"object\":\"user olga\"",
        "\"action\":\"users role\",\"object\":\"user olga\",\"before\":\"operator\",\"after\":\"admin\"",
        "\"action\":\"users delete\",\"object\":\"user root\"",
        "refused: olga is the last admin",
        "\"action\":\"users token\",\"object\":\"token ci\"",
        "\"action\":\"users revoke\",\"object\":\"token ci\"",
    ] {
        assert!(audit.contains(step), "{step}: {audit}");
    }
    assert!(
        !audit.contains("olga-password"),
        "no password in the audit log"
    );
    assert!(!audit.contains(&secret), "no token in the audit log");
}
