//! What the console's tests share: a fake daemon, a console on an ephemeral port with
//! known users and tokens, and a small HTTP/1.1 client.
#![allow(dead_code, unreachable_pub)]

use rvs_console::users::{Entry, Role, Users, hash_password, save, token_digest};
use rvs_console::{Control, IpvsadmReply, ServeArgs};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const VIP: &str = "192.168.0.100:80";

/// A fake daemon: one NAT service with two real servers, edited by `-e`, `-d`, `-a`.
pub struct Fake {
    /// (server, weight) in the table.
    pub servers: Mutex<Vec<(String, i64)>>,
    /// Every edit command received (not listings).
    pub edits: Mutex<Vec<String>>,
    /// Text of `list --failover`.
    pub failover: Mutex<String>,
    /// Reloads asked for.
    pub reloads: std::sync::atomic::AtomicU64,
    /// Every real server's ActiveConn.
    pub active: std::sync::atomic::AtomicU64,
    /// Text of `sorry`.
    pub sorry: Mutex<String>,
    /// Audit records sent to the daemon's log.
    pub audited: Mutex<Vec<String>>,
    /// `flush` requests.
    pub flushes: Mutex<Vec<String>>,
    /// Text of `list --announce` (empty: not an active-active director, refused).
    pub announce: Mutex<String>,
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake {
            servers: Mutex::new(vec![("10.0.1.1:80".into(), 3), ("10.0.1.2:80".into(), 1)]),
            edits: Mutex::default(),
            failover: Mutex::new("no failover: this director owns its addresses\n".into()),
            active: 2.into(),
            reloads: 0.into(),
            sorry: Mutex::default(),
            audited: Mutex::default(),
            flushes: Mutex::default(),
            announce: Mutex::default(),
        })
    }

    pub fn edits(&self) -> Vec<String> {
        self.edits.lock().unwrap().clone()
    }

    pub fn weight(&self, server: &str) -> Option<i64> {
        let s = self.servers.lock().unwrap();
        s.iter().find(|(a, _)| a == server).map(|(_, w)| *w)
    }
}

pub fn ok(stdout: String) -> io::Result<IpvsadmReply> {
    Ok(IpvsadmReply {
        code: 0,
        stdout,
        stderr: String::new(),
    })
}

impl Control for Fake {
    fn request(&self, line: &str) -> io::Result<String> {
        match line {
            "list --health" => Ok(
                "Prot LocalAddress:Port            Server                         State Weight Conf   Ok/Failed       Last failure\n"
                    .into(),
            ),
            "reload" => {
                self.reloads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok("reloaded\n".into())
            }
            "list --failover" => Ok(self.failover.lock().unwrap().clone()),
            "sorry" => Ok(self.sorry.lock().unwrap().clone()),
            "list --announce" => match self.announce.lock().unwrap().clone() {
                t if t.is_empty() => Ok("error: list --announce: not an active-active director\n".into()),
                t => Ok(t),
            },
            "metrics" => Ok(format!(
                "# TYPE rvs_sync_messages_total counter\nrvs_sync_messages_total{{direction=\"sent\"}} {}\nrvs_sync_send_errors_total 0\n",
                self.active.load(std::sync::atomic::Ordering::Relaxed) * 10
            )),
            l if l.starts_with("audit ") => {
                self.audited.lock().unwrap().push(l[6..].to_string());
                Ok("ok\n".into())
            }
            l if l.starts_with("flush ") => {
                self.flushes.lock().unwrap().push(l[6..].to_string());
                Ok("flushed 2\n".into())
            }
            _ => Err(io::Error::other(format!("unknown request {line:?}"))),
        }
    }

    /// A file is refused when a line starts with `bogus` or has the value `bogus` (at that
    /// line, column 1).
    fn check_config(&self, path: &std::path::Path) -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        match text
            .lines()
            .position(|l| l.starts_with("bogus") || l.ends_with("= bogus"))
        {
            Some(i) => Err(format!(
                "{}:{}:1: error: unknown keyword \"bogus\"\n",
                path.display(),
                i + 1
            )),
            None => Ok(format!("-A -t {VIP} -s rr\n")),
        }
    }

    fn ipvsadm(&self, args: &[String]) -> io::Result<IpvsadmReply> {
        let a: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
        let mut servers = self.servers.lock().unwrap();
        match a.first().copied() {
            Some("-L") => {
                let mut out = String::from(
                    "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
                );
                let stats = a.contains(&"--stats") || a.contains(&"--rate");
                out += &format!("TCP  {VIP} rr\n");
                for (s, w) in servers.iter() {
                    out += &if stats {
                        format!("  -> {s:<28} 5 50 40 3000 4000\n")
                    } else {
                        let a = self.active.load(std::sync::atomic::Ordering::Relaxed);
                        format!("  -> {s:<28} Masq    {w:<6} {a:<10} 1\n")
                    };
                }
                ok(out)
            }
            Some("-S") => {
                let mut out = format!("-A -t {VIP} -s rr\n");
                for (s, w) in servers.iter() {
                    out += &format!("-a -t {VIP} -r {s} -m -w {w}\n");
                }
                ok(out)
            }
            Some(cmd @ ("-e" | "-d" | "-a")) => {
                self.edits.lock().unwrap().push(a.join(" "));
                let server = a[a.iter().position(|x| *x == "-r").unwrap() + 1].to_string();
                let weight = a
                    .iter()
                    .position(|x| *x == "-w")
                    .map(|i| a[i + 1].parse::<i64>().unwrap());
                let at = servers.iter().position(|(s, _)| *s == server);
                match (cmd, at) {
                    ("-e", Some(i)) => servers[i].1 = weight.unwrap_or(1),
                    ("-d", Some(i)) => {
                        servers.remove(i);
                    }
                    ("-a", None) => servers.push((server, weight.unwrap_or(1))),
                    _ => {
                        return Ok(IpvsadmReply {
                            code: 255,
                            stdout: String::new(),
                            stderr: "No such destination\n".into(),
                        });
                    }
                }
                ok(String::new())
            }
            _ => Ok(IpvsadmReply {
                code: 2,
                stdout: String::new(),
                stderr: "unexpected command\n".into(),
            }),
        }
    }
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A console on an ephemeral loopback port with users alice (operator), vera (viewer),
/// root (admin) and tokens `rvs_viewtoken` (viewer) and `rvs_optoken` (operator).
pub struct Console {
    pub addr: SocketAddr,
    pub fake: Arc<Fake>,
    pub dir: PathBuf,
}

pub fn users_file(dir: &std::path::Path) -> PathBuf {
    let mut u = Users::default();
    for (n, r) in [
        ("alice", Role::Operator),
        ("vera", Role::Viewer),
        ("root", Role::Admin),
    ] {
        u.set(Entry::User(
            n.into(),
            r,
            hash_password(&format!("{n}-password")).unwrap(),
        ));
    }
    u.set(Entry::Token(
        "admin".into(),
        Role::Admin,
        token_digest("rvs_admintoken"),
    ));
    u.set(Entry::Token(
        "view".into(),
        Role::Viewer,
        token_digest("rvs_viewtoken"),
    ));
    u.set(Entry::Token(
        "ops".into(),
        Role::Operator,
        token_digest("rvs_optoken"),
    ));
    let path = dir.join("users");
    save(&path, &u).unwrap();
    path
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rvs-console-api-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn args(dir: &std::path::Path) -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        users: dir.join("users"),
        audit: dir.join("audit.log"),
        interval: 1,
        ..ServeArgs::default()
    }
}

impl Console {
    pub fn start() -> Console {
        Console::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut ServeArgs)) -> Console {
        let dir = temp_dir();
        users_file(&dir);
        let fake = Fake::new();
        let mut a = args(&dir);
        tweak(&mut a);
        let addr = rvs_console::web::start(&a, fake.clone()).unwrap();
        Console { addr, fake, dir }
    }

    /// A second console over the same directory and daemon, as after a restart (the
    /// first one keeps running; nothing of it is shared but the files).
    pub fn restart(&self) -> Console {
        let addr = rvs_console::web::start(&args(&self.dir), self.fake.clone()).unwrap();
        Console {
            addr,
            fake: self.fake.clone(),
            dir: self.dir.clone(),
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request on a fresh connection; the whole answer.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += "\r\n";
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(body);
        read_response(&mut s)
    }

    /// Log in; the cookie header value and the CSRF token.
    pub fn login(&self, user: &str) -> Session {
        let r = self.form(
            "/login",
            &format!("user={user}&password={user}-password"),
            None,
            None,
        );
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r.header("set-cookie").unwrap();
        let cookie = set.split(';').next().unwrap().to_string();
        let who = self.req("GET", "/api/whoami", &[("Cookie", &cookie)], b"");
        assert_eq!(who.status, 200);
        let v: serde_json::Value = serde_json::from_str(&who.body).unwrap();
        Session {
            cookie,
            csrf: v["csrf"].as_str().unwrap().to_string(),
        }
    }

    /// A urlencoded POST with the console's own Origin unless `origin` says otherwise.
    pub fn form(&self, path: &str, body: &str, cookie: Option<&str>, origin: Option<&str>) -> Resp {
        let own = self.origin();
        let mut h = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", origin.unwrap_or(&own)),
        ];
        if let Some(c) = cookie {
            h.push(("Cookie", c));
        }
        self.req("POST", path, &h, body.as_bytes())
    }

    /// A JSON POST as session `s` (its cookie, CSRF token and the console's Origin).
    pub fn post_json(&self, s: &Session, path: &str, body: &str) -> Resp {
        self.req(
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("Cookie", &s.cookie),
                ("X-CSRF-Token", &s.csrf),
                ("Origin", &self.origin()),
            ],
            body.as_bytes(),
        )
    }

    pub fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default()
    }
}

pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn read_response(s: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no answer: {e}"),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The fake daemon, with rvs's parser as its `check-config`.
pub struct Parsing(pub Arc<Fake>);

/// rvs-config's parser for the file's format (as `rvs check-config` detects it by name).
pub fn parse(path: &std::path::Path) -> Result<String, String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let r = if name.ends_with(".toml") {
        rvs_config::load_native(path).map(|_| ())
    } else if name.contains("keepalived") {
        rvs_config::keepalived::load_keepalived(path).map(|_| ())
    } else {
        rvs_config::load(path).map(|_| ())
    };
    r.map(|()| "ok\n".to_string())
        .map_err(|d| rvs_config::render_all(&d))
}

impl Control for Parsing {
    fn request(&self, line: &str) -> io::Result<String> {
        self.0.request(line)
    }
    fn ipvsadm(&self, args: &[String]) -> io::Result<IpvsadmReply> {
        self.0.ipvsadm(args)
    }
    fn check_config(&self, path: &std::path::Path) -> Result<String, String> {
        parse(path)
    }
}

/// A console editing `name` (holding `text`) over [`Parsing`].
pub fn console_on(name: &str, text: &str) -> Console {
    let dir = temp_dir();
    users_file(&dir);
    std::fs::write(dir.join(name), text).unwrap();
    let mut a = args(&dir);
    a.config = Some(dir.join(name));
    a.config_versions = dir.join("versions");
    let fake = Fake::new();
    let addr = rvs_console::web::start(&a, Arc::new(Parsing(fake.clone()))).unwrap();
    Console { addr, fake, dir }
}
