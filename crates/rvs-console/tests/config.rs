//! Configuration editing through the API and the form (admin only): validate with the
//! parser (its file:line:column message naming the real file), diff, apply (file
//! rewritten, `serial_no` incremented, daemon reloaded, previous version kept), a
//! conflicting edit refused, rollback; each step audited. Against the fake daemon, whose
//! parser refuses a line starting `bogus`.

mod common;

use common::*;
use std::sync::atomic::Ordering;

const CF: &str =
    "serial_no = 1\nprimary = 10.0.0.1\n# the web tier\nvirtual web {\n    weight = 1\n}\n";

fn console() -> Console {
    Console::start_with(|a| {
        let dir = a.users.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("lvs.cf"), CF).unwrap();
        a.config = Some(dir.join("lvs.cf"));
        a.config_versions = dir.join("versions");
    })
}

fn json(c: &Console, s: &Session, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = c.post_json(s, path, &body.to_string());
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn configuration_is_for_admins_only() {
    let c = console();
    for user in ["alice", "vera"] {
        let s = c.login(user);
        for path in ["/config", "/api/config", "/api/config/versions"] {
            let r = c.req("GET", path, &[("Cookie", &s.cookie)], b"");
            assert_eq!(r.status, 403, "{user} GET {path}");
        }
        let (status, _) = json(
            &c,
            &s,
            "/api/config/apply",
            serde_json::json!({"text": "x", "version": "y"}),
        );
        assert_eq!(status, 403, "{user}");
    }
    assert_eq!(std::fs::read_to_string(c.dir.join("lvs.cf")).unwrap(), CF);
    // Without --config the pages are off.
    let d = Console::start();
    let s = d.login("root");
    assert_eq!(
        d.req("GET", "/api/config", &[("Cookie", &s.cookie)], b"")
            .status,
        404
    );
}

#[test]
fn validate_diff_apply_conflict_and_rollback() {
    let c = console();
    let s = c.login("root");
    let cf = c.dir.join("lvs.cf");
    let r = c.req("GET", "/api/config", &[("Cookie", &s.cookie)], b"");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["text"], CF);
    let v1 = v["version"].as_str().unwrap().to_string();

    // An invalid edit: the parser's message, naming the real file; nothing written.
    let bad = CF.replace("# the web tier", "bogus = 1");
    let (status, body) = json(
        &c,
        &s,
        "/api/config/validate",
        serde_json::json!({"text": bad}),
    );
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"],
        format!("{}:3:1: error: unknown keyword \"bogus\"\n", cf.display())
    );
    assert!(
        body["diff"]
            .as_str()
            .unwrap()
            .contains("-# the web tier\n+bogus = 1\n"),
        "{body}"
    );
    let (status, body) = json(
        &c,
        &s,
        "/api/config/apply",
        serde_json::json!({"text": bad, "version": v1}),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), CF);
    assert_eq!(c.fake.reloads.load(Ordering::Relaxed), 0);

    // A valid one: written with serial_no 2, the daemon reloaded, the old file kept.
    let good = CF.replace("weight = 1", "weight = 5");
    let (status, body) = json(
        &c,
        &s,
        "/api/config/apply",
        serde_json::json!({"text": good, "version": v1}),
    );
    assert_eq!(status, 200, "{body}");
    let now = std::fs::read_to_string(&cf).unwrap();
    assert_eq!(now, good.replace("serial_no = 1", "serial_no = 2"));
    assert_eq!(
        body["applied"]["diff"],
        "--- a/lvs.cf\n+++ b/lvs.cf\n@@ -1,6 +1,6 @@\n-serial_no = 1\n+serial_no = 2\n primary = 10.0.0.1\n # the web tier\n virtual web {\n-    weight = 1\n+    weight = 5\n }\n"
    );
    assert_eq!(body["applied"]["reload"], "reloaded");
    assert_eq!(c.fake.reloads.load(Ordering::Relaxed), 1);
    let r = c.req("GET", "/api/config/versions", &[("Cookie", &s.cookie)], b"");
    let versions: Vec<String> = serde_json::from_str(&r.body).unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        std::fs::read_to_string(c.dir.join("versions").join(&versions[0])).unwrap(),
        CF
    );
    let v2 = body["applied"]["after"].as_str().unwrap().to_string();

    // An edit made against the first version conflicts now.
    let other = CF.replace("weight = 1", "weight = 9");
    let (status, body) = json(
        &c,
        &s,
        "/api/config/apply",
        serde_json::json!({"text": other, "version": v1}),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("changed since it was loaded")
    );
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), now);

    // Roll back to the kept version: its text, serial_no counting on (3).
    let (status, body) = json(
        &c,
        &s,
        "/api/config/rollback",
        serde_json::json!({"name": versions[0], "version": v2}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(&cf).unwrap(),
        CF.replace("serial_no = 1", "serial_no = 3")
    );
    assert_eq!(c.fake.reloads.load(Ordering::Relaxed), 2);
    // A name with a path in it is no version.
    let (status, _) = json(
        &c,
        &s,
        "/api/config/rollback",
        serde_json::json!({"name": "../users", "version": body["applied"]["after"]}),
    );
    assert_eq!(status, 502);

    let audit = c.audit();
    for step in [
        "refused: invalid",
        "refused: conflict",
        "\"action\":\"config apply\"",
        "config rollback to",
    ] {
        assert!(audit.contains(step), "{step}: {audit}");
    }
}

#[test]
fn the_form_shows_the_diff_and_the_parser_message() {
    let c = console();
    let s = c.login("root");
    let page = c.req("GET", "/config", &[("Cookie", &s.cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("# the web tier\nvirtual web {"),
        "{}",
        page.body
    );
    let version = {
        let i = page.body.find("name=\"version\" value=\"").unwrap() + 22;
        page.body[i..i + 16].to_string()
    };
    let enc = |t: &str| serde_urlencoded::to_string([("text", t)]).unwrap();
    let bad = CF.replace("# the web tier", "bogus <b>");
    let body = format!("csrf={}&version={version}&op=apply&{}", s.csrf, enc(&bad));
    let r = c.form("/config", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains(":3:1: error: unknown keyword"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("bogus &#60;b&#62;"),
        "the edit is kept, escaped: {}",
        r.body
    );
    let good = CF.replace("weight = 1", "weight = 2").replace('\n', "\r\n");
    let body = format!("csrf={}&version={version}&op=diff&{}", s.csrf, enc(&good));
    let r = c.form("/config", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("-    weight = 1\n+    weight = 2\n"),
        "{}",
        r.body
    );
    assert_eq!(std::fs::read_to_string(c.dir.join("lvs.cf")).unwrap(), CF);
    let body = format!("csrf={}&version={version}&op=apply&{}", s.csrf, enc(&good));
    let r = c.form("/config", &body, Some(&s.cookie), None);
    assert_eq!((r.status, r.header("location")), (303, Some("/config")));
    let page = c.req("GET", "/config", &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body.contains("Applied (previous version kept as"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Roll back to this"));
}

/// urlencode a form value.
fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

#[test]
fn panel_forms_change_their_lines_as_plain_posts() {
    let c = console();
    let s = c.login("root");
    let cf = c.dir.join("lvs.cf");
    let page = c.req("GET", "/config/panels", &[("Cookie", &s.cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-virtual=\"web\""), "{}", page.body);
    let form = c.req(
        "GET",
        "/config/panel?panel=global",
        &[("Cookie", &s.cookie)],
        b"",
    );
    assert!(
        form.body.contains("name=\"f.primary\" value=\"10.0.0.1\""),
        "{}",
        form.body
    );
    let v1 = config_version(&form.body);
    // GLOBAL SETTINGS: primary changed, network added; the comment and order stay.
    let body = format!(
        "csrf={}&version={v1}&panel=global&virtual=&server=&op=apply&f.primary=10.0.0.2&f.network=nat&f.nat_nmask=",
        s.csrf
    );
    // Without the CSRF token: refused, nothing written.
    let no_csrf = body.replacen(&format!("csrf={}&", s.csrf), "", 1);
    assert_eq!(
        c.form("/config/panel", &no_csrf, Some(&s.cookie), None)
            .status,
        403
    );
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), CF);
    let r = c.form("/config/panel", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(&cf).unwrap(),
        "serial_no = 2\nprimary = 10.0.0.2\nnetwork = nat\n# the web tier\nvirtual web {\n    weight = 1\n}\n"
    );
    // A new real server in `web`.
    let v2 = config_version(
        &c.req(
            "GET",
            "/config/panel?panel=server&virtual=web&new=1",
            &[("Cookie", &s.cookie)],
            b"",
        )
        .body,
    );
    let body = format!(
        "csrf={}&version={v2}&panel=server&virtual=web&server=&new=1&name=rs9&op=apply&f.active=1&f.address=10.0.1.9&f.port=&f.weight=3",
        s.csrf
    );
    let r = c.form("/config/panel", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 303, "{}", r.body);
    let text = std::fs::read_to_string(&cf).unwrap();
    assert!(
        text.ends_with("    weight = 1\n    server rs9 {\n        active = 1\n        address = 10.0.1.9\n        weight = 3\n    }\n}\n"),
        "{text}"
    );
    assert!(text.starts_with("serial_no = 3\n"), "{text}");
    // An invalid value: refused with the parser's file:line:column, shown with the text
    // the form made; nothing written.
    let v3 = config_version(
        &c.req(
            "GET",
            "/config/panel?panel=monitor&virtual=web",
            &[("Cookie", &s.cookie)],
            b"",
        )
        .body,
    );
    let body = format!(
        "csrf={}&version={v3}&panel=monitor&virtual=web&op=apply&f.send_program={}",
        s.csrf,
        enc("bogus")
    );
    let r = c.form("/config/panel", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("lvs.cf:7:1: error: unknown keyword"),
        "{}",
        r.body
    );
    assert!(r.body.contains("    send_program = bogus\n"), "{}", r.body);
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), text);
    // A value cannot open a block.
    let body = format!(
        "csrf={}&version={v3}&panel=virtual&virtual=web&op=apply&f.port={}",
        s.csrf,
        enc("80 }")
    );
    assert_eq!(
        c.form("/config/panel", &body, Some(&s.cookie), None).status,
        400
    );
    // Diff shows the change on the configuration page, writing nothing.
    let body = format!(
        "csrf={}&version={v3}&panel=server&virtual=web&server=rs9&op=diff&f.weight=5",
        s.csrf
    );
    let r = c.form("/config/panel", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("-        weight = 3\n+        weight = 5"),
        "{}",
        r.body
    );
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), text);
    // Delete the real server.
    let body = format!(
        "csrf={}&version={v3}&panel=server&virtual=web&server=rs9&op=delete",
        s.csrf
    );
    assert_eq!(
        c.form("/config/panel", &body, Some(&s.cookie), None).status,
        303
    );
    assert!(!std::fs::read_to_string(&cf).unwrap().contains("rs9"));
    let audit = c.audit();
    for want in [
        "\"action\":\"config panel global\"",
        "\"action\":\"config add server web/rs9\"",
        "\"action\":\"config panel monitor web\"",
        "\"action\":\"config delete server web/rs9\"",
    ] {
        assert!(audit.contains(want), "{want}: {audit}");
    }
    // A viewer gets none of it.
    let v = c.login("vera");
    assert_eq!(
        c.req("GET", "/config/panels", &[("Cookie", &v.cookie)], b"")
            .status,
        403
    );
    assert_eq!(
        c.form(
            "/config/panel",
            &format!("csrf={}&panel=global", v.csrf),
            Some(&v.cookie),
            None
        )
        .status,
        403
    );
    assert_eq!(c.fake.reloads.load(Ordering::Relaxed), 3);
}

/// The `version` hidden field of a page.
fn config_version(html: &str) -> String {
    let i = html
        .find("name=\"version\" value=\"")
        .expect("a version field")
        + 22;
    html[i..i + 16].to_string()
}

#[test]
fn the_peer_panel_shows_the_backup_and_copies_the_configuration_to_it() {
    // The backup: its own lvs.cf, an admin API token (`rvs_admintoken`).
    let backup = console();
    let primary_cf = "serial_no = 7\nprimary = 10.0.0.1\nbackup_active = 1\nbackup = 10.0.0.2\n";
    let origin = backup.origin();
    let primary = Console::start_with(|a| {
        let dir = a.users.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("lvs.cf"), primary_cf).unwrap();
        std::fs::write(dir.join("peer.token"), "rvs_admintoken\n").unwrap();
        a.config = Some(dir.join("lvs.cf"));
        a.config_versions = dir.join("versions");
        a.peer = Some(origin.clone());
        a.peer_token_file = Some(dir.join("peer.token"));
    });
    *backup.fake.failover.lock().unwrap() =
        "pulse: standby (backup), heartbeats from 10.0.0.1\n".into();
    let v = primary.login("vera");
    let page = primary.req("GET", "/peer", &[("Cookie", &v.cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("pulse: standby (backup)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"in-sync\""), "{}", page.body);
    assert!(
        !page.body.contains("/peer/copy"),
        "a viewer gets no copy button"
    );
    // A viewer cannot copy.
    let r = primary.form(
        "/peer/copy",
        &format!("csrf={}", v.csrf),
        Some(&v.cookie),
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        std::fs::read_to_string(backup.dir.join("lvs.cf")).unwrap(),
        CF
    );
    // The admin copies it: the backup validates, keeps its version, writes, reloads.
    let s = primary.login("root");
    let r = primary.form(
        "/peer/copy",
        &format!("csrf={}", s.csrf),
        Some(&s.cookie),
        None,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(backup.dir.join("lvs.cf")).unwrap(),
        primary_cf.replace("serial_no = 7", "serial_no = 8")
    );
    assert_eq!(backup.fake.reloads.load(Ordering::Relaxed), 1);
    let page = primary.req("GET", "/peer", &[("Cookie", &s.cookie)], b"");
    assert!(page.body.contains("Copied to http://"), "{}", page.body);
    assert!(page.body.contains("id=\"in-sync\""), "{}", page.body);
    let api = primary.req("GET", "/api/peer", &[("Cookie", &s.cookie)], b"");
    let j: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(j["version"], j["own_version"], "{j}");
    assert!(
        backup.audit().contains(r#""user":"token:admin","#),
        "{}",
        backup.audit()
    );
    assert!(
        primary
            .audit()
            .contains(r#""action":"config copy to peer""#),
        "{}",
        primary.audit()
    );
    // A peer that does not answer: said on the page, the copy refused (502).
    let lost = Console::start_with(|a| {
        let dir = a.users.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("lvs.cf"), primary_cf).unwrap();
        std::fs::write(dir.join("peer.token"), "rvs_admintoken\n").unwrap();
        a.config = Some(dir.join("lvs.cf"));
        a.config_versions = dir.join("versions");
        a.peer = Some("http://127.0.0.1:1".into());
        a.peer_token_file = Some(dir.join("peer.token"));
    });
    let s = lost.login("root");
    let page = lost.req("GET", "/peer", &[("Cookie", &s.cookie)], b"");
    assert!(page.body.contains("id=\"peer-error\""), "{}", page.body);
    let r = lost.post_json(&s, "/api/peer/copy", "");
    assert_eq!(r.status, 502, "{}", r.body);
}

#[test]
fn an_https_peer_is_reached_with_the_certificates_of_peer_ca_only() {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let backup = Console::start_with(|a| {
        let dir = a.users.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("lvs.cf"), CF).unwrap();
        std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.signing_key.serialize_pem()).unwrap();
        a.config = Some(dir.join("lvs.cf"));
        a.config_versions = dir.join("versions");
        a.cert = Some(dir.join("cert.pem"));
        a.key = Some(dir.join("key.pem"));
    });
    let url = format!("https://{}", backup.addr);
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let primary = |ca: &str| {
        let (url, ca) = (url.clone(), ca.to_string());
        Console::start_with(move |a| {
            let dir = a.users.parent().unwrap().to_path_buf();
            std::fs::write(dir.join("lvs.cf"), "serial_no = 3\nprimary = 10.0.0.9\n").unwrap();
            std::fs::write(dir.join("peer.token"), "rvs_admintoken\n").unwrap();
            std::fs::write(dir.join("ca.pem"), ca).unwrap();
            a.config = Some(dir.join("lvs.cf"));
            a.config_versions = dir.join("versions");
            a.peer = Some(url);
            a.peer_token_file = Some(dir.join("peer.token"));
            a.peer_ca = Some(dir.join("ca.pem"));
        })
    };
    // Trusting another certificate: refused by TLS, nothing copied.
    let wrong = primary(&other.cert.pem());
    let s = wrong.login("root");
    let j = wrong.req("GET", "/api/peer", &[("Cookie", &s.cookie)], b"");
    assert!(j.body.contains("certificate"), "{}", j.body);
    // Trusting the peer's: copied.
    let right = primary(&key.cert.pem());
    let s = right.login("root");
    let r = right.post_json(&s, "/api/peer/copy", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(backup.dir.join("lvs.cf")).unwrap(),
        "serial_no = 4\nprimary = 10.0.0.9\n"
    );
}
