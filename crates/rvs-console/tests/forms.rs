//! The per-object forms of keepalived.conf and rvs's TOML, and lvs.cf's FullNAT fields,
//! through the console's HTTP routes (plain form POSTs and the JSON API), against a daemon
//! whose `check-config` is rvs's own parser (rvs-config): the exact file after each edit
//! (comments, order, indentation kept), the file accepted by the parser, an invalid value
//! refused with the parser's file:line:column message, a conflicting edit refused, and a
//! rollback putting the bytes back.

mod common;

use common::*;

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

/// The form page's version field.
fn version(c: &Console, s: &Session, url: &str) -> String {
    let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
    assert_eq!(page.status, 200, "{url}: {}", page.body);
    let i = page.body.find("name=\"version\" value=\"").unwrap() + 22;
    page.body[i..i + 16].to_string()
}

/// POST /config/form with `fields` (each `f.KEY`), as `s`.
fn post(c: &Console, s: &Session, head: &str, fields: &[(&str, &str)]) -> Resp {
    let mut body = format!("csrf={}&{head}", s.csrf);
    for (k, v) in fields {
        body += &format!("&f.{k}={}", enc(v));
    }
    c.form("/config/form", &body, Some(&s.cookie), None)
}

fn read(c: &Console, name: &str) -> String {
    std::fs::read_to_string(c.dir.join(name)).unwrap()
}

fn versions(c: &Console, s: &Session) -> Vec<String> {
    let r = c.req("GET", "/api/config/versions", &[("Cookie", &s.cookie)], b"");
    serde_json::from_str(&r.body).unwrap()
}

/// Roll back to the kept version of `first` (the file's first text; its version is in
/// the kept file's name): `want` is the file again.
fn roll_back_to_first(c: &Console, s: &Session, name: &str, first: &str, want: &str) {
    let v = versions(c, s);
    let tag = format!("-{}-", rvs_console::config::version_of(first));
    let oldest = v.iter().find(|n| n.contains(&tag)).unwrap();
    let now = rvs_console::config::version_of(&read(c, name));
    let r = c.post_json(
        s,
        "/api/config/rollback",
        &serde_json::json!({"name": oldest, "version": now}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(read(c, name), want);
}

const KA: &str = "! Configuration File for keepalived
global_defs {
   router_id LVS_A   # this director
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
    }
}

local_address_group lg1 {
    10.0.2.250
}

# the web tier
virtual_server 10.0.0.100 80 {
    delay_loop 6
    lvs_sched rr          # round robin
    lb_kind NAT
    protocol TCP

    real_server 10.0.1.1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
";

#[test]
fn keepalived_forms_edit_their_lines_through_the_pipeline() {
    let c = console_on("keepalived.conf", KA);
    let s = c.login("root");
    assert!(parse(&c.dir.join("keepalived.conf")).is_ok());
    let list = c.req("GET", "/config/panels", &[("Cookie", &s.cookie)], b"");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("10.0.0.100 80"), "{}", list.body);
    assert!(
        list.body.contains("form=ka-vrrp&#38;vrrp=VI_1"),
        "{}",
        list.body
    );

    // virtual_server: scheduler, FullNAT with its local address group, persistence.
    let url = "/config/form?form=ka-virtual&vs=0";
    let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body.contains("<option value=\"rr\" selected>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<option value=\"twos\">"));
    let v1 = version(&c, &s, url);
    let r = post(
        &c,
        &s,
        &format!("version={v1}&form=ka-virtual&vs=0&op=apply"),
        &[
            ("address", "10.0.0.100"),
            ("port", "80"),
            ("lb_algo", "wlc"),
            ("lb_kind", "FNAT"),
            ("laddr_group_name", "lg1"),
            ("persistence_timeout", "300"),
            ("quorum", "1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after1 = KA
        .replace("    lvs_sched rr          # round robin\n", "    lvs_sched wlc          # round robin\n")
        .replace(
            "    lb_kind NAT\n    protocol TCP\n",
            "    lb_kind FNAT\n    protocol TCP\n    laddr_group_name lg1\n    persistence_timeout 300\n    quorum 1\n",
        );
    assert_eq!(read(&c, "keepalived.conf"), after1);
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));

    // A conflicting edit (made against the first version) is refused; nothing written.
    let r = post(
        &c,
        &s,
        &format!("version={v1}&form=ka-virtual&vs=0&op=apply"),
        &[("lb_algo", "sh")],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("changed since it was loaded"), "{}", r.body);
    assert_eq!(read(&c, "keepalived.conf"), after1);

    // real_server: weight, inhibit_on_failure, and its checker becomes HTTP_GET.
    let url = "/config/form?form=ka-real&vs=0&rs=0";
    let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body.contains("<option value=\"TCP_CHECK\" selected>"),
        "{}",
        page.body
    );
    let v2 = version(&c, &s, url);
    let r = post(
        &c,
        &s,
        &format!("version={v2}&form=ka-real&vs=0&rs=0&op=apply"),
        &[
            ("weight", "3"),
            ("inhibit_on_failure", "yes"),
            ("check", "HTTP_GET"),
            ("connect_timeout", "5"),
            ("retry", "2"),
            ("path", "/health"),
            ("status_code", "200"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after2 = after1.replace(
        "        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n",
        "        weight 3\n        inhibit_on_failure\n        HTTP_GET {\n            connect_timeout 5\n            retry 2\n            url {\n                path /health\n                status_code 200\n            }\n        }\n",
    );
    assert_eq!(read(&c, "keepalived.conf"), after2);
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));

    // Add a real server with a MISC_CHECK, through the JSON API.
    let v3 = rvs_console::config::version_of(&after2);
    let r = c.post_json(
        &s,
        "/api/config/form",
        &serde_json::json!({"form": "ka-real", "vs": 0, "new": true, "op": "apply", "version": v3,
            "fields": {"address": "10.0.1.2", "port": "80", "weight": "1", "check": "MISC_CHECK",
                       "misc_path": "\"/usr/bin/true 10.0.1.2\"", "misc_timeout": "5"}})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let after3 = after2.replacen(
        "        }\n    }\n}\n",
        "        }\n    }\n    real_server 10.0.1.2 80 {\n        weight 1\n        MISC_CHECK {\n            misc_path \"/usr/bin/true 10.0.1.2\"\n            misc_timeout 5\n        }\n    }\n}\n",
        1,
    );
    assert_eq!(read(&c, "keepalived.conf"), after3);
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));

    // vrrp_instance: state, priority, nopreempt, a second address.
    let url = "/config/form?form=ka-vrrp&vrrp=VI_1";
    let v4 = version(&c, &s, url);
    let r = post(
        &c,
        &s,
        &format!("version={v4}&form=ka-vrrp&vrrp=VI_1&op=apply"),
        &[
            ("state", "BACKUP"),
            ("priority", "90"),
            ("nopreempt", "yes"),
            (
                "virtual_ipaddress",
                "10.0.0.100/24 dev eth0\r\n10.0.0.101/24 dev eth0",
            ),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after4 = after3
        .replace("    state MASTER\n", "    state BACKUP\n")
        .replace(
            "    priority 100\n    advert_int 1\n",
            "    priority 90\n    advert_int 1\n    nopreempt\n",
        )
        .replace(
            "        10.0.0.100/24 dev eth0\n",
            "        10.0.0.100/24 dev eth0\n        10.0.0.101/24 dev eth0\n",
        );
    assert_eq!(read(&c, "keepalived.conf"), after4);
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));

    // A value the parser refuses: its file:line:column message in the page; nothing written.
    let v5 = rvs_console::config::version_of(&after4);
    let r = post(
        &c,
        &s,
        &format!("version={v5}&form=ka-virtual&vs=0&op=apply"),
        &[("laddr_group_name", "nosuchgroup")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let file = c.dir.join("keepalived.conf").display().to_string();
    assert!(r.body.contains(&format!("{file}:")), "{}", r.body);
    assert_eq!(read(&c, "keepalived.conf"), after4);
    // A value that is no keepalived line at all is refused before the parser.
    let r = post(
        &c,
        &s,
        &format!("version={v5}&form=ka-virtual&vs=0&op=apply"),
        &[("quorum", "1\n}\nvirtual_server 1.2.3.4 80 {")],
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // Delete the added real server (diff first: nothing written).
    let r = post(
        &c,
        &s,
        &format!("version={v5}&form=ka-real&vs=0&rs=1&op=diff"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(read(&c, "keepalived.conf"), after4);
    let r = post(
        &c,
        &s,
        &format!("version={v5}&form=ka-real&vs=0&rs=1&op=delete"),
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(read(&c, "keepalived.conf"), after4.replace("    real_server 10.0.1.2 80 {\n        weight 1\n        MISC_CHECK {\n            misc_path \"/usr/bin/true 10.0.1.2\"\n            misc_timeout 5\n        }\n    }\n", ""));

    // Add a virtual server; then roll back to the first version: the bytes come back.
    let v6 = rvs_console::config::version_of(&read(&c, "keepalived.conf"));
    let r = post(
        &c,
        &s,
        &format!("version={v6}&form=ka-virtual&new=1&op=apply"),
        &[
            ("address", "10.0.0.100"),
            ("port", "443"),
            ("lb_algo", "mh"),
            ("lb_kind", "DR"),
            ("protocol", "TCP"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(read(&c, "keepalived.conf").ends_with(
        "}\nvirtual_server 10.0.0.100 443 {\n    protocol TCP\n    lb_algo mh\n    lb_kind DR\n}\n"
    ));
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));
    roll_back_to_first(&c, &s, "keepalived.conf", KA, KA);

    let audit = c.audit();
    for step in [
        "config form edit virtual_server 10.0.0.100 80",
        "config form edit real_server 10.0.1.1 80",
        "config form add real_server 10.0.1.2 80",
        "config form edit vrrp_instance VI_1",
        "config form delete real_server 10.0.1.2 80",
        "config form add virtual_server 10.0.0.100 443",
        "refused: conflict",
        "refused: invalid",
    ] {
        assert!(audit.contains(step), "{step}: {audit}");
    }
}

/// A keepalived.conf with a `track_file` for FILE_CHECK and one real server on TCP_CHECK.
const KA_CHECKS: &str = "! checkers
track_file up {
    file /run/rvs-up
}

virtual_server 10.0.0.100 53 {
    lb_algo rr
    lb_kind DR
    protocol UDP

    real_server 10.0.1.1 53 {   # the first resolver
        weight 1
        TCP_CHECK {
            connect_timeout 3   # seconds
        }
    }
}
";

const TCP_BLOCK: &str =
    "        TCP_CHECK {\n            connect_timeout 3   # seconds\n        }\n";

/// A checker, the form's fields for it, the block it writes.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn every_checker_rvs_reads_is_edited_through_the_pipeline() {
    // Each checker in turn replaces the real server's TCP_CHECK through the form: the exact
    // file, accepted by rvs's parser, audited.
    let cases: [Case; 6] = [
        (
            "SMTP_CHECK",
            &[
                ("connect_timeout", "5"),
                ("connect_port", "25"),
                ("helo_name", "lb.example.com"),
            ],
            "        SMTP_CHECK {\n            connect_timeout 5\n            connect_port 25\n            helo_name lb.example.com\n        }\n",
        ),
        (
            "DNS_CHECK",
            &[
                ("connect_timeout", "2"),
                ("retry", "3"),
                ("dns_type", "AAAA"),
                ("dns_name", "www.example.com"),
            ],
            "        DNS_CHECK {\n            connect_timeout 2\n            retry 3\n            type AAAA\n            name www.example.com\n        }\n",
        ),
        (
            "UDP_CHECK",
            &[
                ("connect_ip", "10.0.1.9"),
                ("connect_port", "53"),
                ("payload", "0a 1b2c"),
                ("require_reply", "0a"),
                ("min_reply_length", "2"),
                ("max_reply_length", "512"),
            ],
            "        UDP_CHECK {\n            connect_ip 10.0.1.9\n            connect_port 53\n            payload 0a 1b2c\n            require_reply 0a\n            min_reply_length 2\n            max_reply_length 512\n        }\n",
        ),
        (
            "PING_CHECK",
            &[
                ("connect_timeout", "1"),
                ("delay_loop", "2"),
                ("delay_before_retry", "1"),
            ],
            "        PING_CHECK {\n            connect_timeout 1\n            delay_loop 2\n            delay_before_retry 1\n        }\n",
        ),
        (
            "FILE_CHECK",
            &[("track_file", "up"), ("check_weight", "10 reverse")],
            "        FILE_CHECK {\n            track_file up\n            weight 10 reverse\n        }\n",
        ),
        (
            "BFD_CHECK",
            &[("bfd_name", "bfd_r1"), ("check_weight", "-5")],
            "        BFD_CHECK {\n            name bfd_r1\n            weight -5\n        }\n",
        ),
    ];
    for (check, fields, block) in cases {
        let c = console_on("keepalived.conf", KA_CHECKS);
        let s = c.login("root");
        let url = "/config/form?form=ka-real&vs=0&rs=0";
        let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
        assert!(
            page.body.contains(&format!("<option value=\"{check}\">")),
            "{check}: {}",
            page.body
        );
        let v = version(&c, &s, url);
        let mut all = vec![
            ("address", "10.0.1.1"),
            ("port", "53"),
            ("weight", "1"),
            ("check", check),
        ];
        all.extend_from_slice(fields);
        let r = post(
            &c,
            &s,
            &format!("version={v}&form=ka-real&vs=0&rs=0&op=apply"),
            &all,
        );
        assert_eq!(r.status, 303, "{check}: {}", r.body);
        let want = KA_CHECKS.replace(TCP_BLOCK, block);
        assert_eq!(read(&c, "keepalived.conf"), want, "{check}");
        assert_eq!(
            parse(&c.dir.join("keepalived.conf")),
            Ok("ok\n".into()),
            "{check}"
        );
        assert!(
            c.audit()
                .contains("config form edit real_server 10.0.1.1 53"),
            "{check}: {}",
            c.audit()
        );
        // The form shows the checker and its values back.
        let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
        assert!(
            page.body
                .contains(&format!("<option value=\"{check}\" selected>")),
            "{check}: {}",
            page.body
        );
        for (_, v) in fields {
            assert!(
                page.body.contains(&format!("value=\"{v}\""))
                    || page
                        .body
                        .contains(&format!("<option value=\"{v}\" selected>")),
                "{check} {v}: {}",
                page.body
            );
        }
    }
}

#[test]
fn a_checker_edited_in_place_and_unsafe_checker_values_refused() {
    let udp = KA_CHECKS.replace(
        TCP_BLOCK,
        "        UDP_CHECK {\n            connect_port 53\n            require_reply   # any reply\n        }\n",
    );
    let c = console_on("keepalived.conf", &udp);
    let s = c.login("root");
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));
    let url = "/config/form?form=ka-real&vs=0&rs=0";
    let v = version(&c, &s, url);
    let head = format!("version={v}&form=ka-real&vs=0&rs=0&op=apply");
    // Values keepalived would not read are refused before the parser; nothing written.
    for bad in [
        [("check", "UDP_CHECK"), ("payload", "hello")],
        [("check", "UDP_CHECK"), ("max_reply_length", "-1")],
        [("check", "UDP_CHECK"), ("helo_name", "x")],
        [("check", "FILE_CHECK"), ("track_file", "nosuchfile")],
        [("check", "BFD_CHECK"), ("check_weight", "1")],
        [("check", "DNS_CHECK"), ("dns_type", "PTR")],
    ] {
        let r = post(&c, &s, &head, &bad);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert_eq!(read(&c, "keepalived.conf"), udp);
    }
    // require_reply alone ("yes") is kept byte for byte; bytes replace it on its line.
    let r = post(
        &c,
        &s,
        &head,
        &[
            ("check", "UDP_CHECK"),
            ("connect_port", "53"),
            ("require_reply", "yes"),
            ("payload", "01"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after = udp.replace(
        "            require_reply   # any reply\n",
        "            require_reply   # any reply\n            payload 01\n",
    );
    assert_eq!(read(&c, "keepalived.conf"), after);
    let v = rvs_console::config::version_of(&after);
    let r = post(
        &c,
        &s,
        &format!("version={v}&form=ka-real&vs=0&rs=0&op=apply"),
        &[
            ("check", "UDP_CHECK"),
            ("require_reply", "00 01"),
            ("payload", ""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after2 = udp.replace("require_reply   # any", "require_reply 00 01   # any");
    assert_eq!(read(&c, "keepalived.conf"), after2);
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));
    roll_back_to_first(&c, &s, "keepalived.conf", &udp, &udp);
}

#[test]
fn forms_are_for_admins_and_need_the_csrf_token() {
    let c = console_on("keepalived.conf", KA);
    for user in ["alice", "vera"] {
        let s = c.login(user);
        let r = c.req(
            "GET",
            "/config/form?form=ka-virtual&vs=0",
            &[("Cookie", &s.cookie)],
            b"",
        );
        assert_eq!(r.status, 403, "{user}");
        let r = post(
            &c,
            &s,
            "version=x&form=ka-virtual&vs=0&op=apply",
            &[("lb_algo", "sh")],
        );
        assert_eq!(r.status, 403, "{user}");
    }
    let s = c.login("root");
    let v = version(&c, &s, "/config/form?form=ka-virtual&vs=0");
    let no_csrf = format!("version={v}&form=ka-virtual&vs=0&op=apply&f.lb_algo=sh");
    assert_eq!(
        c.form("/config/form", &no_csrf, Some(&s.cookie), None)
            .status,
        403
    );
    let foreign = format!("csrf={}&{no_csrf}", s.csrf);
    assert_eq!(
        c.form(
            "/config/form",
            &foreign,
            Some(&s.cookie),
            Some("http://evil.example")
        )
        .status,
        403
    );
    // A TOML form on a keepalived.conf is refused.
    let r = post(
        &c,
        &s,
        &format!("version={v}&form=toml-service&svc=0&op=apply"),
        &[("scheduler", "sh")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(read(&c, "keepalived.conf"), KA);
}

const TOML: &str = r#"# rvs director
[timeouts]
tcp = 900

[[vip]]
address = "10.1.0.100/24"
device = "eth0"

[[service]]
vip = "10.1.0.100"   # the web VIP
port = 80
scheduler = "wlc"
method = "nat"

# first backend
[[service.real_server]]
address = "10.2.0.11"
weight = 1
"#;

#[test]
fn toml_forms_keep_comments_and_order() {
    let c = console_on("rvs.toml", TOML);
    let s = c.login("root");
    assert_eq!(parse(&c.dir.join("rvs.toml")), Ok("ok\n".into()));
    let list = c.req("GET", "/config/panels", &[("Cookie", &s.cookie)], b"");
    assert!(list.body.contains("tcp 10.1.0.100:80 wlc"), "{}", list.body);

    // The service: FullNAT with its pool, another scheduler, persistence.
    let url = "/config/form?form=toml-service&svc=0";
    let v1 = version(&c, &s, url);
    let r = post(
        &c,
        &s,
        &format!("version={v1}&form=toml-service&svc=0&op=apply"),
        &[
            ("scheduler", "mh"),
            ("method", "fullnat"),
            ("persistence_timeout", "600"),
            ("fullnat_local_addresses", "10.2.0.250"),
            ("fullnat_ports", "2000-60000"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after1 = TOML.replace(
        "scheduler = \"wlc\"\nmethod = \"nat\"\n",
        "scheduler = \"mh\"\nmethod = \"fullnat\"\npersistence = { timeout = 600 }\n",
    ) + "\n[fullnat]\nlocal_addresses = [\"10.2.0.250\"]\nports = \"2000-60000\"\n";
    assert_eq!(read(&c, "rvs.toml"), after1);
    assert_eq!(parse(&c.dir.join("rvs.toml")), Ok("ok\n".into()));

    // Conflict.
    let r = post(
        &c,
        &s,
        &format!("version={v1}&form=toml-service&svc=0&op=apply"),
        &[("scheduler", "rr")],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(read(&c, "rvs.toml"), after1);

    // A real server: edited, then one added.
    let url = "/config/form?form=toml-real&svc=0&rs=0";
    let v2 = version(&c, &s, url);
    let r = post(
        &c,
        &s,
        &format!("version={v2}&form=toml-real&svc=0&rs=0&op=apply"),
        &[("weight", "4"), ("port", "8080")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after2 = after1.replace("weight = 1\n", "weight = 4\nport = 8080\n");
    assert_eq!(read(&c, "rvs.toml"), after2);
    let v3 = rvs_console::config::version_of(&after2);
    let r = post(
        &c,
        &s,
        &format!("version={v3}&form=toml-real&svc=0&new=1&op=apply"),
        &[("address", "10.2.0.12"), ("weight", "2")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after3 = read(&c, "rvs.toml");
    assert!(
        after3.contains(
            "port = 8080\n\n[[service.real_server]]\naddress = \"10.2.0.12\"\nweight = 2\n"
        ),
        "{after3}"
    );
    assert_eq!(parse(&c.dir.join("rvs.toml")), Ok("ok\n".into()));

    // A value the parser refuses: its message at the file's line and column.
    let v4 = rvs_console::config::version_of(&after3);
    let r = post(
        &c,
        &s,
        &format!("version={v4}&form=toml-real&svc=0&rs=1&op=apply"),
        &[("weight", "70000")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let file = c.dir.join("rvs.toml").display().to_string();
    assert!(r.body.contains(&format!("{file}:")), "{}", r.body);
    assert_eq!(read(&c, "rvs.toml"), after3);

    roll_back_to_first(&c, &s, "rvs.toml", TOML, TOML);
}

const CF: &str = "serial_no = 7
# the director
primary = 10.0.0.1
service = lvs
network = nat
nat_router = 10.0.1.254 eth1:1
virtual web {
    active = 1
    address = 10.0.0.100 eth0:1
    port = 80
    scheduler = wlc
    server rs1 {
        address = 10.0.1.1
        active = 1
        weight = 1
    }
}
";

#[test]
fn the_virtual_server_panel_sets_the_fullnat_keys() {
    let c = console_on("lvs.cf", CF);
    let s = c.login("root");
    assert_eq!(parse(&c.dir.join("lvs.cf")), Ok("ok\n".into()));
    let url = "/config/panel?panel=virtual&virtual=web";
    let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body.contains("name=\"g.fullnat_local\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"g.network\" value=\"nat\""),
        "{}",
        page.body
    );
    let v1 = version(&c, &s, url);
    let body = format!(
        "csrf={}&version={v1}&panel=virtual&virtual=web&op=apply&f.scheduler=twos&g.network=fullnat&g.fullnat_local={}&g.fullnat_ports=2000-3000",
        s.csrf,
        enc("10.0.1.250 10.0.1.251")
    );
    let r = c.form("/config/panel", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 303, "{}", r.body);
    let after = CF
        .replace("serial_no = 7", "serial_no = 8")
        .replace("network = nat\n", "network = fullnat\n")
        .replace("nat_router = 10.0.1.254 eth1:1\n", "nat_router = 10.0.1.254 eth1:1\nfullnat_local = 10.0.1.250 10.0.1.251\nfullnat_ports = 2000-3000\n")
        .replace("scheduler = wlc", "scheduler = twos");
    assert_eq!(read(&c, "lvs.cf"), after);
    assert_eq!(parse(&c.dir.join("lvs.cf")), Ok("ok\n".into()));
    // A conflicting edit is refused.
    let r = c.form("/config/panel", &body, Some(&s.cookie), None);
    assert_eq!(r.status, 409, "{}", r.body);
    // Rollback: the first text again, serial_no counting on as Piranha's tool counted.
    roll_back_to_first(
        &c,
        &s,
        "lvs.cf",
        CF,
        &CF.replace("serial_no = 7", "serial_no = 9"),
    );
}

/// A value outside a field's choices (`lb_kind TUN` with its tunnel options) is offered,
/// selected, in the form, and the form as a browser sends it back (every field) changes
/// only the field that was edited.
#[test]
fn a_value_outside_the_choices_survives_an_edit_of_another_field() {
    let ka = "virtual_server 10.0.0.100 80 {\n    lvs_sched rr\n    lb_kind TUN gue 6080\n    protocol TCP\n    real_server 10.0.1.1 80 {\n        weight 1\n    }\n}\n";
    let c = console_on("keepalived.conf", ka);
    let s = c.login("root");
    let url = "/config/form?form=ka-virtual&vs=0";
    let page = c.req("GET", url, &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body
            .contains("<option value=\"TUN gue 6080\" selected>"),
        "{}",
        page.body
    );
    let v = version(&c, &s, url);
    let every = [
        ("address", "10.0.0.100"),
        ("port", "80"),
        ("fwmark", ""),
        ("protocol", "TCP"),
        ("lb_algo", "rr"),
        ("lb_kind", "TUN gue 6080"),
        ("laddr_group_name", ""),
        ("persistence_timeout", ""),
        ("persistence_granularity", ""),
        ("delay_loop", ""),
        ("quorum", "2"),
        ("hysteresis", ""),
        ("sorry_server", ""),
    ];
    let r = post(
        &c,
        &s,
        &format!("version={v}&form=ka-virtual&vs=0&op=apply"),
        &every,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let want = ka.replace("    protocol TCP\n", "    protocol TCP\n    quorum 2\n");
    assert_eq!(read(&c, "keepalived.conf"), want);
    assert_eq!(parse(&c.dir.join("keepalived.conf")), Ok("ok\n".into()));
}
