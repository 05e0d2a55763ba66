//! keepalived's health checkers (`HTTP_GET`, `SSL_GET`, `TCP_CHECK`, `SMTP_CHECK`,
//! `DNS_CHECK`, `MISC_CHECK`, `UDP_CHECK`, `PING_CHECK`, `FILE_CHECK`, `BFD_CHECK`) parsed into
//! data as written ([`Checker`]); [`super::health`] maps the ones rvs performs to the health
//! model. Nothing here runs a check. `SMTP_CHECK`, `FILE_CHECK` and `BFD_CHECK` are read (so
//! their mistakes are reported) but rvs does not perform them: each gives one warning saying
//! so, and its real server is not monitored by it.
//!
//! Timers are resolved when the checker is read: the checker's own value, else its real
//! server's, else its virtual server's, else keepalived's default (`connect_timeout` 5 s;
//! `retry` 1, DNS 3, MISC 0; `delay_before_retry` 3 s for HTTP/SSL, 1 s otherwise;
//! `warmup` 0; `delay_loop` the virtual server's, 60 s).

use std::net::IpAddr;
use std::time::Duration;

use rvs_core::health::DnsType;

use super::syntax::{Stmt, Word};
use super::{Ctx, Scope, Use};

/// Which checker a block is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Http,
    Ssl,
    Tcp,
    Smtp,
    Dns,
    Misc,
    Udp,
    Ping,
    File,
    Bfd,
}

impl Kind {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Kind::Http => "HTTP_GET",
            Kind::Ssl => "SSL_GET",
            Kind::Tcp => "TCP_CHECK",
            Kind::Smtp => "SMTP_CHECK",
            Kind::Dns => "DNS_CHECK",
            Kind::Misc => "MISC_CHECK",
            Kind::Udp => "UDP_CHECK",
            Kind::Ping => "PING_CHECK",
            Kind::File => "FILE_CHECK",
            Kind::Bfd => "BFD_CHECK",
        }
    }

    /// Whether rvs performs this checker.
    pub(crate) fn performed(self) -> bool {
        !matches!(self, Kind::Smtp | Kind::File | Kind::Bfd)
    }

    pub(crate) fn of(keyword: &str) -> Option<Kind> {
        Some(match keyword {
            "HTTP_GET" => Kind::Http,
            "SSL_GET" => Kind::Ssl,
            "TCP_CHECK" => Kind::Tcp,
            "SMTP_CHECK" => Kind::Smtp,
            "DNS_CHECK" => Kind::Dns,
            "MISC_CHECK" => Kind::Misc,
            "UDP_CHECK" => Kind::Udp,
            "PING_CHECK" | "ICMP_CHECK" => Kind::Ping,
            "FILE_CHECK" => Kind::File,
            "BFD_CHECK" => Kind::Bfd,
            _ => return None,
        })
    }
}

/// The connection keywords every network checker takes, with what rvs does with them.
pub(crate) const CONNECT_KEYS: &[(&str, Use)] = &[
    ("connect_ip", Use::Applied),
    ("connect_port", Use::Applied),
    ("bindto", Use::Applied),
    ("bind_port", Use::Applied),
    (
        "bind_if",
        Use::NotActed("rvs does not bind a check to an interface (only to `bindto`)"),
    ),
    ("connect_timeout", Use::Applied),
    ("fwmark", Use::Applied),
];

const COMMON_KEYS: &[(&str, Use)] = &[
    ("retry", Use::Applied),
    ("delay_before_retry", Use::Applied),
    ("warmup", Use::Applied),
    ("delay_loop", Use::Applied),
    ("alpha", Use::Applied),
    ("log_all_failures", Use::Ignored),
];

/// The keywords of a `url` block.
pub(crate) const URL_KEYS: &[(&str, Use)] = &[
    ("path", Use::Applied),
    ("digest", Use::Applied),
    ("status_code", Use::Applied),
    ("virtualhost", Use::Applied),
    ("regex", Use::Applied),
    ("regex_no_match", Use::Applied),
    (
        "regex_options",
        Use::NotActed("rvs matches `regex` with the regex crate's defaults"),
    ),
    (
        "regex_min_offset",
        Use::NotActed("rvs matches `regex` anywhere in the body"),
    ),
    (
        "regex_max_offset",
        Use::NotActed("rvs matches `regex` anywhere in the body"),
    ),
    ("regex_stack", Use::Ignored),
    (
        "username",
        Use::NotActed(
            "rvs sends no HTTP authentication, so a server that requires it answers 401 and \
             fails the check",
        ),
    ),
    (
        "password",
        Use::NotActed(
            "rvs sends no HTTP authentication, so a server that requires it answers 401 and \
             fails the check",
        ),
    ),
    ("tls_compliant", Use::Ignored),
];

/// The keywords of a checker block. Those of checkers rvs does not perform are covered by
/// the checker's own warning.
pub(crate) fn keys(k: Kind) -> Vec<(&'static str, Use)> {
    let own: &[(&str, Use)] = match k {
        Kind::Http | Kind::Ssl => &[
            ("nb_get_retry", Use::Applied),
            ("virtualhost", Use::Applied),
            ("http_protocol", Use::Applied),
            ("enable_sni", Use::Applied),
            (
                "fast_recovery",
                Use::NotActed("rvs checks every `delay_loop`, also after a failure"),
            ),
            ("url", Use::Applied),
        ],
        Kind::Tcp | Kind::Ping => &[],
        Kind::Smtp => &[("helo_name", Use::Kept), ("host", Use::Kept)],
        Kind::Dns => &[("type", Use::Applied), ("name", Use::Applied)],
        Kind::Misc => &[
            ("misc_path", Use::Applied),
            ("misc_timeout", Use::Applied),
            ("misc_dynamic", Use::Applied),
            ("user", Use::Applied),
        ],
        Kind::Udp => &[
            ("payload", Use::Applied),
            ("require_reply", Use::Applied),
            ("min_reply_length", Use::Applied),
            ("max_reply_length", Use::Applied),
        ],
        Kind::File => &[
            ("track_file", Use::Kept),
            ("file", Use::Kept),
            ("weight", Use::Kept),
        ],
        Kind::Bfd => &[("name", Use::Kept), ("weight", Use::Kept)],
    };
    let connect: &[(&str, Use)] = match k {
        Kind::Misc | Kind::File | Kind::Bfd => &[],
        _ => CONNECT_KEYS,
    };
    let common: &[(&str, Use)] = match k {
        Kind::File | Kind::Bfd => &[],
        _ => COMMON_KEYS,
    };
    own.iter()
        .chain(connect)
        .chain(common)
        .map(|&(n, u)| {
            // One warning for the whole block of a checker rvs does not perform.
            if k.performed() {
                (n, u)
            } else {
                (n, Use::Kept)
            }
        })
        .collect()
}

/// Timer keywords as written at one level (virtual server, real server or checker).
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
}

impl Timers {
    /// Read `connect_timeout`, `retry` (`nb_get_retry`), `delay_before_retry` or `warmup`.
    pub(crate) fn read(&mut self, cx: &mut Ctx, s: &Stmt) {
        match s.key().text.as_str() {
            "connect_timeout" => {
                if let Some(t) = lenient_timer(cx, s) {
                    // keepalived: a 0 timeout is raised to 1 s.
                    self.connect_timeout = Some(if t.is_zero() {
                        Duration::from_secs(1)
                    } else {
                        t
                    });
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(n) = lenient_uint(cx, s, 0, u64::from(u32::MAX)) {
                    self.retry = Some(n as u32);
                }
            }
            "delay_before_retry" => {
                self.delay_before_retry = lenient_timer(cx, s).or(self.delay_before_retry)
            }
            "warmup" => self.warmup = lenient_timer(cx, s).or(self.warmup),
            _ => {}
        }
    }

    fn over(&self, outer: &Timers) -> Timers {
        Timers {
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            retry: self.retry.or(outer.retry),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
            warmup: self.warmup.or(outer.warmup),
        }
    }
}

/// A checker's timers, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckTimers {
    /// `connect_timeout` [5 s].
    pub connect_timeout: Duration,
    /// `retry` (legacy `nb_get_retry`) [1; DNS 3; MISC 0]: failures before the server is down.
    pub retry: u32,
    /// `delay_before_retry` [3 s HTTP/SSL, 1 s otherwise].
    pub delay_before_retry: Duration,
    /// `warmup` [0]: random delay before the first check, at most this long.
    pub warmup: Duration,
    /// `delay_loop` [the virtual server's, 60 s]: time between checks.
    pub delay_loop: Duration,
}

/// Where a checker connects from and to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// `connect_ip` [the real server's address].
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` [the real server's port].
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port.
    pub bind_port: Option<u16>,
    /// `fwmark`: mark put on the checker's packets.
    pub fwmark: Option<u32>,
}

/// One `url { ... }` of an HTTP_GET / SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Url {
    /// `path` (required).
    pub path: String,
    /// `digest`: MD5 of the body, lower-case hex.
    pub digest: Option<String>,
    /// `status_code`: accepted codes or ranges (empty: keepalived's 200-299).
    pub status_codes: Vec<(u16, u16)>,
    /// `virtualhost`: Host header for this URL.
    pub virtualhost: Option<String>,
    /// `regex`: a pattern the body must (or, with `regex_no_match`, must not) match.
    pub regex: Option<String>,
    /// `regex_no_match`.
    pub regex_no_match: bool,
}

/// HTTP_GET / SSL_GET parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpCheck {
    /// The URLs, all of which must pass.
    pub urls: Vec<Url>,
    /// `virtualhost` [the real server's, then the virtual server's].
    pub virtualhost: Option<String>,
    /// `http_protocol` [1.0]: `1.0`, `1.0C`, `1.1` or `1.0C`.
    pub http_protocol: Option<String>,
    /// `enable_sni` (SSL_GET).
    pub enable_sni: bool,
}

/// SMTP_CHECK parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmtpCheck {
    /// `helo_name` [keepalived: the host name].
    pub helo_name: Option<String>,
    /// Legacy `host { ... }` blocks: further addresses to check.
    pub hosts: Vec<Connect>,
}

/// DNS_CHECK parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// `type` [SOA].
    pub query_type: String,
    /// `name` [`.`].
    pub name: String,
}

/// MISC_CHECK parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MiscCheck {
    /// `misc_path`: the command line.
    pub path: String,
    /// `misc_timeout` [the delay loop].
    pub timeout: Option<Duration>,
    /// `misc_dynamic`: exit 2..=255 sets weight = exit − 2.
    pub dynamic: bool,
    /// `user`: run as this user (and group).
    pub user: Option<String>,
}

/// UDP_CHECK parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpCheck {
    /// `payload`: hex bytes to send.
    pub payload: Option<String>,
    /// `require_reply [HEX]`: a reply is needed (and must start with these bytes).
    pub require_reply: Option<String>,
    /// `min_reply_length`.
    pub min_reply_length: Option<u32>,
    /// `max_reply_length`.
    pub max_reply_length: Option<u32>,
}

/// FILE_CHECK parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileCheck {
    /// `track_file`: the `track_file` block it follows.
    pub track_file: String,
    /// `weight N [reverse]`.
    pub weight: Option<i32>,
    /// `reverse`.
    pub reverse: bool,
}

/// BFD_CHECK parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BfdCheck {
    /// `name`: the `bfd_instance` it follows.
    pub name: String,
    /// `weight N [reverse]`.
    pub weight: Option<i32>,
    /// `reverse`.
    pub reverse: bool,
}

/// What a checker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// HTTP_GET.
    Http(HttpCheck),
    /// SSL_GET.
    Ssl(HttpCheck),
    /// TCP_CHECK: connect only.
    Tcp,
    /// SMTP_CHECK.
    Smtp(SmtpCheck),
    /// DNS_CHECK.
    Dns(DnsCheck),
    /// MISC_CHECK.
    Misc(MiscCheck),
    /// UDP_CHECK.
    Udp(UdpCheck),
    /// PING_CHECK (ICMP echo).
    Ping,
    /// FILE_CHECK.
    File(FileCheck),
    /// BFD_CHECK.
    Bfd(BfdCheck),
}

/// One checker of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// What it checks.
    pub kind: CheckKind,
    /// Connection parameters.
    pub connect: Connect,
    /// Timers, resolved.
    pub timers: CheckTimers,
    /// `alpha` [the real server's]: start as failed.
    pub alpha: bool,
}

/// Read a checker block under a real server.
pub(crate) fn checker(
    cx: &mut Ctx,
    s: &Stmt,
    outer: &Timers,
    delay_loop: Duration,
    alpha: bool,
) -> Option<Checker> {
    let kind = Kind::of(&s.key().text)?;
    if !kind.performed() {
        cx.warn(
            &s.key().loc,
            format!(
                "`{}` is not performed by rvs: this real server is not monitored by it",
                s.key().text
            ),
        );
    }
    let errors_before = cx.error_count();
    let body: &[Stmt] = match &s.block {
        Some(b) => &b.body,
        None => &[],
    };
    let mut timers = Timers::default();
    let mut connect = Connect::default();
    let mut delay = delay_loop;
    let mut alpha = alpha;
    let mut http = HttpCheck::default();
    let mut smtp = SmtpCheck::default();
    let mut dns = DnsCheck {
        query_type: "SOA".to_string(),
        name: ".".to_string(),
    };
    let mut misc = MiscCheck::default();
    let mut misc_path_seen = false;
    let mut url_seen = false;
    let mut udp = UdpCheck::default();
    let mut file = FileCheck::default();
    let mut bfd = BfdCheck::default();
    for st in body {
        if cx.check_key(Scope::Checker(kind), st).is_none() {
            continue;
        }
        let key = st.key().text.as_str();
        if !matches!(key, "url" | "host") {
            cx.no_block(st);
        }
        if read_connect(cx, st, &mut connect) {
            if key == "connect_timeout" {
                timers.read(cx, st);
            }
            continue;
        }
        match key {
            "retry" | "nb_get_retry" | "delay_before_retry" | "warmup" => timers.read(cx, st),
            "delay_loop" => {
                if let Some(t) = lenient_timer(cx, st) {
                    delay = t.max(Duration::from_secs(1));
                }
            }
            "alpha" => alpha = lenient_flag(cx, st, alpha),
            // Not acted on (warned by check_key) and not kept; a value keepalived cannot read
            // is still warned, as keepalived logs it.
            "log_all_failures" | "fast_recovery" => {
                lenient_flag(cx, st, false);
            }
            "url" => {
                if let Some(u) = url(cx, st) {
                    url_seen = true;
                    http.urls.push(u);
                }
            }
            // check_http.c virtualhost_handler(): "HTTP_GET virtualhost name missing".
            "virtualhost" if cx.no_value_ignored(st) => {}
            "virtualhost" => http.virtualhost = cx.string(st, "a host name"),
            // check_http.c http_protocol_handler(): "Missing http_protocol version".
            "http_protocol" if cx.no_value_ignored(st) => {}
            "http_protocol" => {
                if let Some(w) = cx.one(st, "an HTTP version") {
                    match w.text.as_str() {
                        "1.0" | "1.0C" | "1.1" | "1.0c" => {
                            http.http_protocol = Some(w.text.clone())
                        }
                        // check_http.c http_protocol_handler: "Invalid http_protocol version"
                        // is logged and the version stays.
                        _ => cx.warn(
                            &w.loc,
                            format!(
                                "unknown HTTP protocol `{}`: ignored, as keepalived ignores it \
                                 (`1.0`, `1.0C` or `1.1`)",
                                w.text
                            ),
                        ),
                    }
                }
            }
            "enable_sni" => http.enable_sni = lenient_flag(cx, st, http.enable_sni),
            // check_smtp.c smtp_helo_name_handler(): "SMTP_CHECK helo name missing".
            "helo_name" if cx.no_value_ignored(st) => {}
            "helo_name" => smtp.helo_name = cx.string(st, "a HELO name"),
            "host" => {
                let mut c = Connect::default();
                if let Some(b) = cx.need_block(st) {
                    for h in b {
                        if cx.check_key(Scope::SmtpHost, h).is_some() {
                            cx.no_block(h);
                            read_connect(cx, h, &mut c);
                        }
                    }
                    smtp.hosts.push(c);
                }
            }
            "type" => {
                if let Some(w) = cx.one(st, "a DNS query type") {
                    // check_dns.c dns_type_handler: an unknown type is logged "Unknown DNS
                    // check type %s - ignoring" and the type stays (SOA by default).
                    if DnsType::from_name(&w.text).is_some() {
                        dns.query_type = w.text.to_ascii_uppercase();
                    } else {
                        cx.warn(
                            &w.loc,
                            format!(
                                "unknown DNS query type `{}`: ignored, as keepalived ignores \
                                 it (the type stays {})",
                                w.text, dns.query_type
                            ),
                        );
                    }
                }
            }
            "name" if kind == Kind::Dns => {
                if let Some(w) = cx.one(st, "a domain name") {
                    dns.name = w.text.clone();
                }
            }
            // check_bfd.c bfd_name_handler(): "No or too many names specified - skipping
            // checker" (the checker is not performed by rvs either way).
            "name" => {
                if !cx.no_value_ignored(st)
                    && let Some(w) = cx.one(st, "a bfd_instance name")
                {
                    bfd.name = w.text.clone();
                }
            }
            // check_misc.c misc_path_handler() re-reads the line (lib/parser.c
            // alloc_strvec_quoted_escaped()): with no command it sets none and the line is
            // ignored (misc_end_handler() then skips a checker that has none); when an
            // unterminated string took it, keepalived 2.2 dereferences the NULL it gets and
            // crashes: refused.
            "misc_path" if st.args().is_empty() && st.key().cut => {
                cx.error(
                    &st.key().loc.after(),
                    "`misc_path` lost its command to an unterminated string: keepalived \
                     crashes reading this line",
                    Some("the command in a closed string".to_string()),
                );
            }
            "misc_path" if cx.no_value_ignored(st) => {}
            "misc_path" => {
                misc_path_seen = true;
                misc.path = cx.string(st, "a command").unwrap_or_default();
            }
            "misc_timeout" => misc.timeout = lenient_timer(cx, st).or(misc.timeout),
            "misc_dynamic" => misc.dynamic = lenient_flag(cx, st, misc.dynamic),
            // check_misc.c misc_user_handler(): "No user specified for misc checker script".
            "user" if cx.no_value_ignored(st) => {}
            "user" => misc.user = cx.string(st, "a user [group]"),
            // check_udp.c payload_handler(): "UDP_CHECK payload requires a payload".
            "payload" if cx.no_value_ignored(st) => {}
            "payload" => {
                udp.payload = cx.string(st, "hex bytes, e.g. `0a 1b2c`");
                if let Some(p) = &udp.payload
                    && hex_checked(cx, st, p, false).is_none()
                {
                    udp.payload = None;
                }
            }
            "require_reply" => {
                let hex = st
                    .args()
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let checked = if hex.is_empty() {
                    Some(Hex::Bytes)
                } else {
                    hex_checked(cx, st, &hex, true)
                };
                if checked == Some(Hex::Wildcard) {
                    cx.warn(
                        &st.key().loc,
                        "wildcard nibbles (`x`) in `require_reply` are not supported by rvs: \
                         this UDP_CHECK is not performed",
                    );
                }
                if checked.is_some() {
                    udp.require_reply = Some(hex);
                }
            }
            // check_udp.c min/max_length_handler: lengths in 0..=65535, anything else logged
            // and ignored.
            "min_reply_length" => {
                if let Some(n) = lenient_uint(cx, st, 0, 65_535) {
                    udp.min_reply_length = Some(n as u32);
                }
            }
            "max_reply_length" => {
                if let Some(n) = lenient_uint(cx, st, 0, 65_535) {
                    udp.max_reply_length = Some(n as u32);
                }
            }
            // check_file.c track_file_handler() reads its name unchecked (no name: "is
            // missing a parameter", keepalived exits); `file`, a later keepalived's spelling
            // that 2.2.8 does not know (it skips the line), is ignored without one.
            "file" if cx.no_value_ignored(st) => {}
            "track_file" | "file" => {
                if let Some(w) = cx.one(st, "a track_file name") {
                    file.track_file = w.text.clone();
                }
            }
            "weight" => {
                let limit = if kind == Kind::File {
                    2_147_483_647
                } else {
                    253
                };
                let (w, rev) = weight_reverse(cx, st, limit);
                if kind == Kind::File {
                    (file.weight, file.reverse) = (w, rev);
                } else {
                    (bfd.weight, bfd.reverse) = (w, rev);
                }
            }
            _ => {}
        }
    }
    // A checker without its required item is dropped by keepalived's end handler
    // (`dequeue_new_checker`) with a logged error; the real server keeps its other checkers.
    let missing = |cx: &mut Ctx, what: &str, logged: &str| {
        cx.warn(
            &s.key().loc,
            format!(
                "`{}` has no {what}: keepalived drops this checker (\"{logged}\") and so does \
                 rvs - the real server is not monitored by it",
                s.key().text
            ),
        );
    };
    let kind_data = match kind {
        Kind::Http | Kind::Ssl => {
            // check_http.c http_get_check_end.
            if !url_seen && cx.error_count() == errors_before {
                missing(
                    cx,
                    "`url` with a `path`",
                    "HTTP/SSL_GET checker has no urls specified - ignoring",
                );
                return None;
            }
            if kind == Kind::Http {
                CheckKind::Http(http)
            } else {
                CheckKind::Ssl(http)
            }
        }
        Kind::Tcp => CheckKind::Tcp,
        Kind::Smtp => CheckKind::Smtp(smtp),
        Kind::Dns => CheckKind::Dns(dns),
        Kind::Misc => {
            // check_misc.c misc_end_handler.
            if !misc_path_seen && cx.error_count() == errors_before {
                missing(
                    cx,
                    "`misc_path`",
                    "No script path has been specified for MISC_CHECKER - skipping",
                );
                return None;
            }
            CheckKind::Misc(misc)
        }
        Kind::Udp => {
            if let (Some(lo), Some(hi)) = (udp.min_reply_length, udp.max_reply_length)
                && lo > hi
            {
                // check_udp.c udp_check_end_handler: "min_reply length %d > max_reply_length
                // %d - will always fail", and the checker runs.
                cx.warn(
                    &s.key().loc,
                    format!(
                        "`min_reply_length` {lo} is above `max_reply_length` {hi}: no reply can \
                         pass, so this check always fails, as keepalived's does"
                    ),
                );
            }
            CheckKind::Udp(udp)
        }
        Kind::Ping => CheckKind::Ping,
        Kind::File => {
            // check_file.c file_end_handler.
            if file.track_file.is_empty() && cx.error_count() == errors_before {
                missing(
                    cx,
                    "`track_file`",
                    "FILE_CHECK has no track_file specified - ignoring",
                );
                return None;
            }
            CheckKind::File(file)
        }
        Kind::Bfd => {
            // check_bfd.c bfd_end_handler.
            if bfd.name.is_empty() && cx.error_count() == errors_before {
                missing(
                    cx,
                    "`name`",
                    "No name has been specified for BFD_CHECKER - skipping",
                );
                return None;
            }
            CheckKind::Bfd(bfd)
        }
    };
    if cx.error_count() != errors_before {
        return None;
    }
    let t = timers.over(outer);
    let timers = CheckTimers {
        connect_timeout: t.connect_timeout.unwrap_or(Duration::from_secs(5)),
        retry: t.retry.unwrap_or(match kind {
            Kind::Dns => 3,
            Kind::Misc => 0,
            _ => 1,
        }),
        delay_before_retry: t.delay_before_retry.unwrap_or(match kind {
            Kind::Http | Kind::Ssl => Duration::from_secs(3),
            _ => Duration::from_secs(1),
        }),
        warmup: t.warmup.unwrap_or(Duration::ZERO),
        delay_loop: delay,
    };
    Some(Checker {
        kind: kind_data,
        connect,
        timers,
        alpha,
    })
}

/// Read a connection keyword; whether it was one.
fn read_connect(cx: &mut Ctx, st: &Stmt, c: &mut Connect) -> bool {
    match st.key().text.as_str() {
        // check_api.c co_ip_handler, co_port_handler, bind_handler, bind_port_handler,
        // co_fwmark_handler: a bad value is logged ("Invalid checker connect_port '0'", "Invalid
        // connect_ip address foo - ignoring") and ignored; ports are 1..=65535.
        "connect_ip" => c.connect_ip = lenient_ip(cx, st).or(c.connect_ip),
        "connect_port" => {
            if let Some(n) = lenient_uint(cx, st, 1, 65_535) {
                c.connect_port = Some(n as u16);
            }
        }
        "bindto" => c.bindto = lenient_ip(cx, st).or(c.bindto),
        "bind_port" => {
            if let Some(n) = lenient_uint(cx, st, 1, 65_535) {
                c.bind_port = Some(n as u16);
            }
        }
        // Warned as not acted on by check_key; nothing kept. check_api.c bind_if_handler()
        // reads the name unchecked: without one keepalived exits ("is missing a parameter").
        "bind_if" => {
            cx.one(st, "an interface");
        }
        "fwmark" => {
            if let Some(n) = lenient_uint(cx, st, 0, u64::from(u32::MAX)) {
                c.fwmark = Some(n as u32);
            }
        }
        "connect_timeout" => {}
        _ => return false,
    }
    true
}

/// What a hex string holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hex {
    /// Plain bytes.
    Bytes,
    /// Bytes with wildcard nibbles (`x`), which rvs cannot compare.
    Wildcard,
}

/// Check a UDP_CHECK hex string, reporting a bad one at the keyword's values.
fn hex_checked(cx: &mut Ctx, st: &Stmt, hex: &str, wildcards: bool) -> Option<Hex> {
    match hex_bytes(hex, wildcards) {
        Ok((_, w)) => Some(if w { Hex::Wildcard } else { Hex::Bytes }),
        // check_udp.c payload/require_reply handlers: "Invalid hex string for UDP_CHECK
        // ..." is logged and the value ignored.
        Err(why) => {
            let args = st.args();
            let loc = args[0].loc.to(&args[args.len() - 1].loc);
            cx.warn(
                &loc,
                format!(
                    "`{hex}` is not a hex string ({why}): `{}` is ignored, as keepalived \
                     ignores it",
                    st.key().text
                ),
            );
            None
        }
    }
}

/// keepalived's `read_hex_str` (lib/utils.c): hex digits, spaces and tabs between bytes; two
/// digits make a byte, a single digit before a space or the end is a byte of its own; with
/// `wildcards`, `x`/`X` is a nibble that matches anything (read as 0). Returns the bytes and
/// whether a wildcard was used. Unlike keepalived, a string ending in `ff` is accepted.
pub(crate) fn hex_bytes(s: &str, wildcards: bool) -> Result<(Vec<u8>, bool), String> {
    let nibble = |c: u8| -> Result<(u8, bool), String> {
        match c {
            b'0'..=b'9' => Ok((c - b'0', false)),
            b'a'..=b'f' => Ok((c - b'a' + 10, false)),
            b'A'..=b'F' => Ok((c - b'A' + 10, false)),
            b'x' | b'X' if wildcards => Ok((0, true)),
            _ => Err(format!("`{}` is not a hex digit", char::from(c))),
        }
    };
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut wild = false;
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let (hi, w1) = nibble(b[i])?;
        i += 1;
        let mut v = hi;
        wild |= w1;
        if i < b.len() && b[i] != b' ' {
            let (lo, w2) = nibble(b[i])?;
            i += 1;
            v = hi << 4 | lo;
            wild |= w2;
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err("no bytes".to_string());
    }
    Ok((out, wild))
}

/// A checker value keepalived logs and ignores when it cannot read it (its handlers call
/// `read_unsigned_strvec`/`read_timer` and return on failure): warned, the value as before.
fn ignored(cx: &mut Ctx, st: &Stmt, w: &Word, expected: &str) {
    cx.warn(
        &w.loc,
        format!(
            "`{}` is not {expected} for `{}`: ignored, as keepalived ignores it (the value \
             stays as before, or the default)",
            w.text,
            st.key().text
        ),
    );
}

/// A timer in seconds (lib/parser.c `read_timer`), warned and ignored when unreadable.
pub(super) fn lenient_timer(cx: &mut Ctx, st: &Stmt) -> Option<Duration> {
    let w = cx.one(st, "seconds")?;
    let t = super::parse_seconds(&w.text);
    if t.is_none() {
        ignored(cx, st, w, "a time in seconds");
    }
    t
}

/// An unsigned number in `lo..=hi` (lib/parser.c `read_unsigned_strvec`), warned and ignored
/// otherwise.
fn lenient_uint(cx: &mut Ctx, st: &Stmt, lo: u64, hi: u64) -> Option<u64> {
    let w = cx.one(st, "a number")?;
    match w.text.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Some(n),
        _ => {
            ignored(cx, st, w, &format!("a number in {lo}..={hi}"));
            None
        }
    }
}

/// An IP address (lib/utils.c `inet_stosockaddr`, no name resolution), warned and ignored
/// otherwise.
fn lenient_ip(cx: &mut Ctx, st: &Stmt) -> Option<IpAddr> {
    let w = cx.one(st, "an IP address")?;
    let a = w.text.parse::<IpAddr>().ok();
    if a.is_none() {
        ignored(cx, st, w, "an IP address");
    }
    a
}

/// An optional `true|false|yes|no|on|off` after a checker flag (default true); anything else
/// is logged by keepalived ("Invalid alpha parameter maybe", lib/parser.c
/// `check_true_false`) and the flag stays `current`.
fn lenient_flag(cx: &mut Ctx, st: &Stmt, current: bool) -> bool {
    match st.args() {
        [w] if !matches!(
            w.text.to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "false" | "no" | "off"
        ) =>
        {
            ignored(cx, st, w, "`true` or `false`");
            current
        }
        _ => cx.flag(st),
    }
}

/// `weight N [reverse|noreverse]` in a FILE_CHECK (N in -2147483647..=2147483647) or a
/// BFD_CHECK (N in -253..=253). keepalived check_file.c track_file_weight_handler(): a weight
/// it cannot read, or an unknown word after it, is logged ("... Ignoring...", "unknown track
/// file weight option %s - ignoring") and the whole line ignored: the default weight stays.
fn weight_reverse(cx: &mut Ctx, st: &Stmt, limit: i64) -> (Option<i32>, bool) {
    let args = st.args();
    let Some(w) = args.first() else {
        cx.warn(
            &st.key().loc,
            "`weight` has no value: ignored, as keepalived ignores it",
        );
        return (None, false);
    };
    let n = w
        .text
        .parse::<i64>()
        .ok()
        .filter(|n| (-limit..=limit).contains(n));
    let reverse = match args.get(1).map(|r| r.text.as_str()) {
        None | Some("noreverse") => Some(false),
        Some("reverse") => Some(true),
        Some(_) => None,
    };
    match (n, reverse) {
        (Some(n), Some(r)) if args.len() <= 2 => (Some(n as i32), r),
        _ => {
            cx.warn(
                &st.line_loc(),
                format!(
                    "`weight` takes a number in -{limit}..={limit} and an optional `reverse` or \
                     `noreverse`: this line is ignored, as keepalived ignores it (the default \
                     weight stays)"
                ),
            );
            (None, false)
        }
    }
}

fn url(cx: &mut Ctx, s: &Stmt) -> Option<Url> {
    let body = cx.need_block(s)?;
    let mut u = Url::default();
    let mut has_path = false;
    for st in body {
        if cx.check_key(Scope::Url, st).is_none() {
            continue;
        }
        cx.no_block(st);
        match st.key().text.as_str() {
            "path" => {
                if let Some(p) = cx.string(st, "a URL path") {
                    u.path = p;
                    has_path = true;
                }
            }
            // check_http.c digest_handler: a second digest, or one that is not 32
            // characters of hex pairs, is logged and ignored (the url is checked without it).
            "digest" => {
                if let Some(w) = cx.one(st, "an MD5 digest") {
                    if u.digest.is_some() {
                        cx.warn(
                            &w.loc,
                            "a second `digest` in this url: keepalived ignores it (\"is a \
                             duplicate\") and so does rvs - the first applies",
                        );
                    } else if let Some(d) = md5_digest(&w.text) {
                        u.digest = Some(d);
                    } else {
                        cx.warn(
                            &w.loc,
                            format!(
                                "`{}` is not an MD5 digest (32 hex digits): keepalived ignores \
                                 it and so does rvs - this url is checked without a digest",
                                w.text
                            ),
                        );
                    }
                }
            }
            // check_http.c status_code_handler: each code or range in 100..=599 is added;
            // an invalid one is logged ("Invalid HTTP_GET status code") and skipped. With
            // none added, url_check sets 200-299.
            "status_code" => {
                if st.args().is_empty() {
                    cx.warn(
                        &st.key().loc,
                        "`status_code` without codes: keepalived adds none and so does rvs (without \
                         codes the url accepts 200-299)",
                    );
                }
                for w in st.args() {
                    let r = match w.text.split_once('-') {
                        Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()),
                        None => w.text.parse::<u16>().ok().map(|c| (c, c)),
                    };
                    match r {
                        Some((a, b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                            u.status_codes.push((a, b))
                        }
                        _ => cx.warn(
                            &w.loc,
                            format!(
                                "`{}` is not an HTTP status code or range in 100..=599: \
                                 keepalived ignores it (\"Invalid HTTP_GET status code\") and \
                                 so does rvs",
                                w.text
                            ),
                        ),
                    }
                }
            }
            // check_http.c url_virtualhost_handler(): "Missing HTTP_GET virtualhost name".
            "virtualhost" if cx.no_value_ignored(st) => {}
            "virtualhost" => u.virtualhost = cx.string(st, "a host name"),
            // check_http.c regex_handler() re-reads the line (lib/parser.c
            // alloc_strvec_quoted_escaped()) and needs exactly one pattern: none or more than
            // one is "regex missing or too many fields" and the line is ignored; when an
            // unterminated string took it, keepalived 2.2 dereferences the NULL it gets and
            // crashes: refused.
            "regex" if st.args().is_empty() && st.key().cut => {
                cx.error(
                    &st.key().loc.after(),
                    "`regex` lost its pattern to an unterminated string: keepalived crashes \
                     reading this line",
                    Some("the pattern in a closed string".to_string()),
                );
            }
            "regex" if cx.no_value_ignored(st) => {}
            "regex" if st.args().len() > 1 => cx.warn(
                &st.line_loc(),
                "`regex` takes one pattern (quote one with spaces): the line is ignored, as \
                 keepalived ignores it",
            ),
            "regex" => u.regex = cx.string(st, "a regular expression"),
            "regex_no_match" => u.regex_no_match = lenient_flag(cx, st, u.regex_no_match),
            // Ignored (warned by check_key), not kept; a value keepalived cannot read is
            // still warned, as keepalived logs it.
            "tls_compliant" => {
                lenient_flag(cx, st, false);
            }
            // username, password, regex_options & co: warned by check_key, not kept.
            _ => {}
        }
    }
    if !has_path {
        // check_http.c url_check: "HTTP/SSL_GET checker url has no path - ignoring".
        cx.warn(
            &s.key().loc,
            "`url` has no `path`: keepalived ignores this url and so does rvs",
        );
        return None;
    }
    Some(u)
}

/// An HTTP_GET/SSL_GET `digest` as keepalived's digest_handler reads it: 32 characters, each
/// pair read by `strtoul(.., 16)` that must use both characters (so a pair may be a sign or
/// a blank followed by one hex digit; `-1` is 0xff). The digest in lower-case hex, or None.
fn md5_digest(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = String::with_capacity(32);
    for pair in b.chunks(2) {
        let v = match (pair[0], hex(pair[1])) {
            (c, Some(lo)) if hex(c).is_some() => hex(c)? * 16 + lo,
            (b'+', Some(lo)) => lo,
            (b'-', Some(lo)) => 256 - lo,
            (c, Some(lo)) if c.is_ascii_whitespace() => lo,
            _ => return None,
        };
        out.push_str(&format!("{:02x}", v as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::hex_bytes;

    #[test]
    fn hex_strings_as_keepalived_reads_them() {
        // Pairs make bytes; a lone digit before a space or the end is a byte of its own.
        assert_eq!(
            hex_bytes("0a 1b2c d", false),
            Ok((vec![0x0a, 0x1b, 0x2c, 0x0d], false))
        );
        assert_eq!(hex_bytes("\tFF ", false), Ok((vec![0xff], false)));
        // Wildcards only where allowed (require_reply), read as 0.
        assert_eq!(hex_bytes("0x", true), Ok((vec![0x00], true)));
        assert!(hex_bytes("0x", false).is_err());
        assert!(hex_bytes("0g", false).unwrap_err().contains("`g`"));
        // A tab right after a digit is not a separator in keepalived's reader.
        assert!(hex_bytes("0\t1", false).is_err());
        assert!(hex_bytes("  ", false).is_err());
    }
}
