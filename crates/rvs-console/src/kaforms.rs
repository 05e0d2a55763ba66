//! Per-object forms for keepalived.conf: `virtual_server`, its `real_server`s with their
//! checker, and `vrrp_instance`. As for lvs.cf's panels ([`crate::panels`]), a form's
//! change is made line by line on the file's text: a keyword that is there has its
//! arguments replaced on its own line (indentation, a trailing comment, the rest of the
//! file, its comments and order untouched), a new keyword goes after the block's last
//! keyword line, a keyword left blank is removed; blocks are added at the end of their
//! parent and deleted whole. The new text then takes the whole-file editor's path
//! ([`crate::config::ConfigStore::apply`]: rvs's own keepalived parser validates it, diff,
//! conflict check, atomic write, reload, rollback, audit).
//!
//! The syntax read here is keepalived's (lib/parser.c): one keyword and its arguments a
//! line, blocks opened by a `{` at the end of their header line and closed by a `}` line;
//! `#` and `!` start comments. A block laid out otherwise (its `{` on the next line, a
//! one-line `url { path / }`) is not offered to the forms: it is edited with the
//! whole-file editor (the forms refuse rather than guess). Only the main file is edited:
//! blocks in `include`d files are not listed.

use std::ops::Range;

/// The 14 schedulers rvs has (keepalived check_parser.c lbalgo_handler()'s list).
pub const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// Forwarding methods for `lb_kind`: keepalived's NAT, DR, TUN, and DPVS's `FNAT`
/// (FullNAT, with `laddr_group_name` naming a `local_address_group`), which rvs's parser
/// accepts (rvs-config keepalived `forwarding()`).
pub const METHODS: [&str; 4] = ["NAT", "DR", "TUN", "FNAT"];

/// The checkers the real server form writes: every checker rvs's keepalived parser reads
/// (rvs-config keepalived `check::Kind`, keepalived 2.2's check_*.c keywords).
pub const CHECKERS: [&str; 10] = [
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

/// Every checker block keepalived knows: [`CHECKERS`] and `ICMP_CHECK`, keepalived
/// check_ping.c's other name for PING_CHECK, which is kept (and edited) as written.
const ALL_CHECKERS: [&str; 11] = [
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
    "ICMP_CHECK",
];

/// DNS_CHECK `type`s (keepalived check_dns.c `DNS_TYPE`; rvs-core `DnsType::from_name`).
const DNS_TYPES: [&str; 8] = ["", "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];

/// A form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `virtual_server`.
    Virtual,
    /// `real_server` (with its checker).
    Real,
    /// `vrrp_instance`.
    Vrrp,
}

/// One field of a form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The form's name for it (the keyword, or a part of the header).
    pub key: &'static str,
    /// What it is.
    pub label: &'static str,
    /// The values offered (empty: free text).
    pub options: &'static [&'static str],
    /// One value a line (a list block such as `virtual_ipaddress`).
    pub multi: bool,
}

const fn f(key: &'static str, label: &'static str) -> Field {
    Field {
        key,
        label,
        options: &[],
        multi: false,
    }
}

const fn o(key: &'static str, label: &'static str, options: &'static [&'static str]) -> Field {
    Field {
        key,
        label,
        options,
        multi: false,
    }
}

const VIRTUAL_FIELDS: &[Field] = &[
    f("address", "Virtual IP address (blank with a firewall mark)"),
    f("port", "Port"),
    f("fwmark", "Firewall mark (instead of address and port)"),
    o("protocol", "Protocol", &["", "TCP", "UDP", "SCTP"]),
    o(
        "lb_algo",
        "Scheduler (lb_algo / lvs_sched)",
        &SCHEDULERS_OPT,
    ),
    o(
        "lb_kind",
        "Forwarding method (lb_kind / lvs_method; FNAT: FullNAT)",
        &["", "NAT", "DR", "TUN", "FNAT"],
    ),
    f(
        "laddr_group_name",
        "FullNAT local address group (local_address_group name; lb_kind FNAT)",
    ),
    f("persistence_timeout", "Persistence timeout (seconds)"),
    f(
        "persistence_granularity",
        "Persistence granularity (netmask)",
    ),
    f("delay_loop", "Checker interval (seconds)"),
    f("quorum", "Quorum (live weight needed)"),
    f("hysteresis", "Quorum hysteresis"),
    f("sorry_server", "Sorry server (IP PORT)"),
];

const SCHEDULERS_OPT: [&str; 15] = [
    "", "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    "twos",
];

const REAL_FIELDS: &[Field] = &[
    f("address", "Real server address"),
    f("port", "Port"),
    f("weight", "Weight"),
    o(
        "inhibit_on_failure",
        "Inhibit on failure (weight 0 instead of removal)",
        &["", "yes"],
    ),
    o(
        "check",
        "Checker (its block is rewritten when the type changes)",
        &[
            "",
            "TCP_CHECK",
            "HTTP_GET",
            "SSL_GET",
            "MISC_CHECK",
            "SMTP_CHECK",
            "DNS_CHECK",
            "UDP_CHECK",
            "PING_CHECK",
            "FILE_CHECK",
            "BFD_CHECK",
        ],
    ),
    f(
        "connect_timeout",
        "Checker: connect timeout (seconds; not MISC/FILE/BFD)",
    ),
    f(
        "connect_ip",
        "Checker: address to connect to (not MISC/FILE/BFD)",
    ),
    f(
        "connect_port",
        "Checker: port to connect to (not MISC/FILE/BFD)",
    ),
    f("delay_loop", "Checker: interval (seconds; not FILE/BFD)"),
    f(
        "retry",
        "Checker: retries (retry / nb_get_retry; not FILE/BFD)",
    ),
    f(
        "delay_before_retry",
        "Checker: delay before a retry (seconds; not FILE/BFD)",
    ),
    f("path", "HTTP_GET / SSL_GET: url path"),
    f("status_code", "HTTP_GET / SSL_GET: expected status code"),
    f(
        "misc_path",
        "MISC_CHECK: command (quote it when it has spaces)",
    ),
    f("misc_timeout", "MISC_CHECK: timeout (seconds)"),
    f(
        "helo_name",
        "SMTP_CHECK: HELO name (quote it when it has spaces)",
    ),
    o("dns_type", "DNS_CHECK: query type (type)", &DNS_TYPES),
    f("dns_name", "DNS_CHECK: name queried (name)"),
    f("payload", "UDP_CHECK: payload (hex bytes, e.g. 0a 1b2c)"),
    f(
        "require_reply",
        "UDP_CHECK: require_reply (yes: any reply; or hex bytes it starts with)",
    ),
    f(
        "min_reply_length",
        "UDP_CHECK: minimum reply length (bytes)",
    ),
    f(
        "max_reply_length",
        "UDP_CHECK: maximum reply length (bytes)",
    ),
    f(
        "track_file",
        "FILE_CHECK: the track_file block followed (its name)",
    ),
    f("bfd_name", "BFD_CHECK: the bfd_instance followed (name)"),
    f(
        "check_weight",
        "FILE_CHECK / BFD_CHECK: weight [reverse] (weight)",
    ),
];

const VRRP_FIELDS: &[Field] = &[
    o("state", "Initial state", &["", "MASTER", "BACKUP"]),
    f("interface", "Interface"),
    f("virtual_router_id", "Virtual router id (1-255)"),
    f("priority", "Priority (1-255)"),
    f("advert_int", "Advertisement interval (seconds)"),
    o("nopreempt", "No preemption", &["", "yes"]),
    Field {
        key: "virtual_ipaddress",
        label: "Virtual IP addresses (one a line, e.g. 10.0.0.100/24 dev eth0)",
        options: &[],
        multi: true,
    },
];

impl Kind {
    /// From its name in a URL or form.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Virtual, Kind::Real, Kind::Vrrp]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// Its name in URLs and forms.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Virtual => "ka-virtual",
            Kind::Real => "ka-real",
            Kind::Vrrp => "ka-vrrp",
        }
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Virtual => "virtual_server",
            Kind::Real => "real_server",
            Kind::Vrrp => "vrrp_instance",
        }
    }

    /// Its fields.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Kind::Virtual => VIRTUAL_FIELDS,
            Kind::Real => REAL_FIELDS,
            Kind::Vrrp => VRRP_FIELDS,
        }
    }
}

/// Which object a form edits: the `vs`-th `virtual_server` of the file (0-based, in file
/// order), its `rs`-th `real_server`, or the `vrrp_instance` named `vrrp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The virtual server's index.
    pub vs: Option<usize>,
    /// The real server's index in it.
    pub rs: Option<usize>,
    /// The VRRP instance's name.
    pub vrrp: Option<String>,
}

struct Line<'a> {
    /// The text without its comment, trimmed.
    code: &'a str,
    /// Braces opened minus closed before this line.
    depth: i32,
}

/// The line without its comment: keepalived lib/parser.c `decomment()`: `!` or `#`
/// outside double quotes starts one, wherever it is (`\#`, `\!` are the characters).
fn code_of(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

fn braces(code: &str) -> i32 {
    let mut quoted = false;
    let mut n = 0;
    for c in code.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' if !quoted => n += 1,
            '}' if !quoted => n -= 1,
            _ => {}
        }
    }
    n
}

fn lines_of(text: &str) -> Vec<Line<'_>> {
    let mut depth = 0;
    text.split_inclusive('\n')
        .map(|l| {
            let code = code_of(l.trim_end_matches(['\n', '\r'])).trim();
            let line = Line { code, depth };
            depth += braces(code);
            line
        })
        .collect()
}

/// A block: its header line (None: the file), the lines in it, their depth.
#[derive(Debug, Clone)]
struct Block {
    header: Option<usize>,
    inner: Range<usize>,
    depth: i32,
}

/// `KIND ARGS {`: the arguments.
fn header<'a>(code: &'a str, kind: &str) -> Option<&'a str> {
    let rest = code.strip_prefix(kind)?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) && !rest.starts_with('{') {
        return None;
    }
    let args = rest.trim().strip_suffix('{')?.trim();
    (!args.contains(['{', '}'])).then_some(args)
}

fn first_word(code: &str) -> &str {
    code.split_whitespace().next().unwrap_or("")
}

/// The blocks directly in `parent` whose keyword is one of `kinds`, in order.
fn children(lines: &[Line<'_>], parent: &Block, kinds: &[&str]) -> Vec<Block> {
    let mut out = Vec::new();
    for h in parent.inner.clone() {
        if lines[h].depth != parent.depth
            || !kinds.iter().any(|k| header(lines[h].code, k).is_some())
        {
            continue;
        }
        if let Some(close) = (h + 1..parent.inner.end)
            .find(|&i| lines[i].depth == parent.depth + 1 && braces(lines[i].code) < 0)
        {
            out.push(Block {
                header: Some(h),
                inner: h + 1..close,
                depth: parent.depth + 1,
            });
        }
    }
    out
}

/// Whether a block's keyword line is there laid out as the forms cannot edit (a header
/// without its `{`, or a one-line block).
fn odd_layout(lines: &[Line<'_>], parent: &Block, kind: &str) -> bool {
    parent.inner.clone().any(|i| {
        lines[i].depth == parent.depth
            && first_word(lines[i].code) == kind
            && header(lines[i].code, kind).is_none()
    })
}

fn top(lines: &[Line<'_>]) -> Block {
    Block {
        header: None,
        inner: 0..lines.len(),
        depth: 0,
    }
}

fn virtuals(lines: &[Line<'_>]) -> Vec<Block> {
    children(lines, &top(lines), &["virtual_server"])
}

fn find(lines: &[Line<'_>], t: &Target) -> Result<Block, String> {
    if let Some(name) = &t.vrrp {
        return children(lines, &top(lines), &["vrrp_instance"])
            .into_iter()
            .find(|b| {
                header(lines[b.header.unwrap_or(0)].code, "vrrp_instance") == Some(name.as_str())
            })
            .ok_or_else(|| format!("no vrrp_instance {name:?}"));
    }
    let vs = t.vs.ok_or("name the virtual_server")?;
    let v = virtuals(lines)
        .into_iter()
        .nth(vs)
        .ok_or_else(|| format!("no virtual_server #{vs}"))?;
    match t.rs {
        None => Ok(v),
        Some(rs) => children(lines, &v, &["real_server"])
            .into_iter()
            .nth(rs)
            .ok_or_else(|| format!("no real_server #{rs} in virtual_server #{vs}")),
    }
}

/// The keyword line `key` (or one of its `aliases`) directly in `b`.
fn key_line(lines: &[Line<'_>], b: &Block, keys: &[&str]) -> Option<usize> {
    b.inner.clone().find(|&i| {
        lines[i].depth == b.depth
            && braces(lines[i].code) == 0
            && !lines[i].code.contains(['{', '}'])
            && keys.contains(&first_word(lines[i].code))
    })
}

fn args_of(code: &str) -> String {
    let w = first_word(code);
    code[w.len()..].trim().to_string()
}

fn lead(s: &str) -> &str {
    &s[..s.len() - s.trim_start().len()]
}

/// The text as lines, the last one ending in a newline.
fn raw_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    if let Some(l) = out.last_mut()
        && !l.ends_with('\n')
    {
        l.push('\n');
    }
    out
}

/// One level of indentation: a tab where the file indents with tabs, else four spaces.
fn unit(text: &str) -> &'static str {
    if text.lines().any(|l| l.starts_with('\t')) {
        "\t"
    } else {
        "    "
    }
}

/// The indentation of lines directly in `b`.
fn indent_in(text: &str, raw: &[String], lines: &[Line<'_>], b: &Block) -> String {
    if let Some(i) = b
        .inner
        .clone()
        .find(|&i| lines[i].depth == b.depth && !lines[i].code.is_empty())
    {
        return lead(&raw[i]).to_string();
    }
    match b.header {
        Some(h) => format!("{}{}", lead(&raw[h]), unit(text)),
        None => String::new(),
    }
}

/// A value from a form: one line, no braces, no comment characters, quotes paired.
fn check_value(key: &str, v: &str) -> Result<(), String> {
    if v.contains(['\n', '\r', '{', '}', '#', '!']) || v.matches('"').count() % 2 == 1 {
        return Err(format!(
            "{key}: a value is one line without braces, `#`, `!` or an unpaired quote: {v:?}"
        ));
    }
    Ok(())
}

/// Set keyword `keys[0]` (or the alias of it that is there) to `value` directly in `b`;
/// blank removes it. `flag`: a keyword without arguments, there when `value` is not blank.
fn set_in(text: &str, b: &Block, keys: &[&str], value: &str, flag: bool) -> Result<String, String> {
    let value = value.trim();
    check_value(keys[0], value)?;
    let lines = lines_of(text);
    let mut raw = raw_lines(text);
    let found = key_line(&lines, b, keys);
    // The same value: the line is left as it is, byte for byte.
    if let Some(i) = found
        && !value.is_empty()
        && (if flag {
            args_of(lines[i].code).is_empty()
        } else {
            args_of(lines[i].code) == value
        })
    {
        return Ok(text.to_string());
    }
    match found {
        Some(i) if value.is_empty() => {
            raw.remove(i);
        }
        Some(i) => {
            let old = raw[i].trim_end_matches(['\n', '\r']).to_string();
            let key = first_word(lines[i].code);
            let start = old.len() - old.trim_start().len();
            let comment = &old[start + lines[i].code.len()..];
            let new = if flag {
                key.to_string()
            } else {
                format!("{key} {value}")
            };
            raw[i] = format!("{}{new}{comment}\n", lead(&old));
        }
        None if value.is_empty() => {}
        None => {
            let indent = indent_in(text, &raw, &lines, b);
            let at = b
                .inner
                .clone()
                .rev()
                .find(|&i| {
                    lines[i].depth == b.depth
                        && !lines[i].code.is_empty()
                        && !lines[i].code.contains(['{', '}'])
                })
                .map_or(b.inner.start, |i| i + 1);
            let new = if flag {
                keys[0].to_string()
            } else {
                format!("{} {value}", keys[0])
            };
            raw.insert(at, format!("{indent}{new}\n"));
        }
    }
    Ok(raw.concat())
}

/// Replace a block's header arguments.
fn set_header(text: &str, b: &Block, kind: &str, args: &str) -> Result<String, String> {
    check_value(kind, args)?;
    if args.is_empty() {
        return Err(format!("{kind}: its address (or name) is needed"));
    }
    let lines = lines_of(text);
    let mut raw = raw_lines(text);
    let h = b.header.ok_or("the file has no header")?;
    let old = raw[h].trim_end_matches(['\n', '\r']).to_string();
    let start = old.len() - old.trim_start().len();
    let comment = &old[start + lines[h].code.len()..];
    raw[h] = format!("{}{kind} {args} {{{comment}\n", lead(&old));
    Ok(raw.concat())
}

/// Add `KIND ARGS { }` at the end of `parent`; the new text.
fn add_block(text: &str, parent: &Block, kind: &str, args: &str) -> Result<String, String> {
    check_value(kind, args)?;
    let lines = lines_of(text);
    let mut raw = raw_lines(text);
    let indent = match parent.header {
        Some(_) => indent_in(text, &raw, &lines, parent),
        None => String::new(),
    };
    let sep = if args.is_empty() { "" } else { " " };
    let block = format!("{indent}{kind}{sep}{args} {{\n{indent}}}\n");
    raw.insert(parent.inner.end, block);
    Ok(raw.concat())
}

/// Remove a block (its header to its closing line).
fn delete(text: &str, b: &Block) -> String {
    let h = b.header.expect("a block");
    text.split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i < h || *i > b.inner.end)
        .map(|(_, l)| l)
        .collect()
}

/// Replace the entries of a list block (`virtual_ipaddress`) in `b` with `entries`
/// (comment and blank lines in it stay); an empty list removes the block.
fn set_list(text: &str, b: &Block, kind: &str, entries: &[&str]) -> Result<String, String> {
    for e in entries {
        check_value(kind, e)?;
    }
    let lines = lines_of(text);
    let found = children(&lines, b, &[kind]).into_iter().next();
    if found.is_none() && odd_layout(&lines, b, kind) {
        return Err(format!(
            "{kind} is laid out as the forms do not edit: use the whole-file editor"
        ));
    }
    let (text, list) = match found {
        Some(l)
            if l.inner
                .clone()
                .filter(|&i| !lines[i].code.is_empty())
                .map(|i| lines[i].code)
                .eq(entries.iter().copied()) =>
        {
            return Ok(text.to_string());
        }
        Some(l) if entries.is_empty() => return Ok(delete(text, &l)),
        Some(l) => (text.to_string(), l),
        None if entries.is_empty() => return Ok(text.to_string()),
        None => {
            let t = add_block(text, b, kind, "")?;
            let lines = lines_of(&t);
            let b2 = rebase(&lines, b);
            let l = children(&lines, &b2, &[kind])
                .pop()
                .expect("the block just added");
            (t, l)
        }
    };
    let lines = lines_of(&text);
    let raw = raw_lines(&text);
    let indent = indent_in(&text, &raw, &lines, &list);
    let mut out = Vec::new();
    let mut put = false;
    for (i, l) in raw.iter().enumerate() {
        if list.inner.contains(&i) && !lines[i].code.is_empty() {
            if !put {
                out.extend(entries.iter().map(|e| format!("{indent}{e}\n")));
                put = true;
            }
            continue;
        }
        if i == list.inner.end && !put {
            out.extend(entries.iter().map(|e| format!("{indent}{e}\n")));
        }
        out.push(l.clone());
    }
    Ok(out.concat())
}

/// The block at the same header line after lines were added after it (its range again).
fn rebase(lines: &[Line<'_>], b: &Block) -> Block {
    match b.header {
        None => top(lines),
        Some(h) => {
            let close = (h + 1..lines.len())
                .find(|&i| lines[i].depth == b.depth && braces(lines[i].code) < 0)
                .unwrap_or(lines.len());
            Block {
                header: Some(h),
                inner: h + 1..close,
                depth: b.depth,
            }
        }
    }
}

/// An object in the list of the file's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its header's arguments (`10.0.0.100 80`, `fwmark 1`, `VI_1`).
    pub name: String,
    /// Its real servers' header arguments (virtual servers), with their checker's keyword.
    pub servers: Vec<(String, String)>,
    /// lb_algo, lb_kind, protocol (virtual servers); state, interface, priority (VRRP).
    pub summary: String,
}

/// The file's virtual servers.
pub fn list_virtual(text: &str) -> Vec<Object> {
    let lines = lines_of(text);
    virtuals(&lines)
        .into_iter()
        .map(|v| {
            let servers = children(&lines, &v, &["real_server"])
                .into_iter()
                .map(|r| {
                    let name = header(lines[r.header.unwrap_or(0)].code, "real_server")
                        .unwrap_or_default()
                        .to_string();
                    let check = checker(&lines, &r)
                        .map(|(k, _)| k.to_string())
                        .unwrap_or_default();
                    (name, check)
                })
                .collect();
            let get = |k: &[&str]| {
                key_line(&lines, &v, k)
                    .map(|i| args_of(lines[i].code))
                    .unwrap_or_default()
            };
            Object {
                name: header(lines[v.header.unwrap_or(0)].code, "virtual_server")
                    .unwrap_or_default()
                    .to_string(),
                servers,
                summary: [
                    get(&["lb_algo", "lvs_sched"]),
                    get(&["lb_kind", "lvs_method"]),
                    get(&["protocol"]),
                ]
                .join(" ")
                .trim()
                .to_string(),
            }
        })
        .collect()
}

/// The file's VRRP instances.
pub fn list_vrrp(text: &str) -> Vec<Object> {
    let lines = lines_of(text);
    children(&lines, &top(&lines), &["vrrp_instance"])
        .into_iter()
        .map(|b| {
            let get = |k: &str| {
                key_line(&lines, &b, &[k])
                    .map(|i| args_of(lines[i].code))
                    .unwrap_or_default()
            };
            Object {
                name: header(lines[b.header.unwrap_or(0)].code, "vrrp_instance")
                    .unwrap_or_default()
                    .to_string(),
                servers: Vec::new(),
                summary: format!(
                    "{} {} priority {}",
                    get("state"),
                    get("interface"),
                    get("priority")
                ),
            }
        })
        .collect()
}

/// The first checker block of a real server, with its keyword.
fn checker(lines: &[Line<'_>], rs: &Block) -> Option<(&'static str, Block)> {
    let b = children(lines, rs, &ALL_CHECKERS).into_iter().next()?;
    let code = lines[b.header?].code;
    let kind = ALL_CHECKERS
        .into_iter()
        .find(|k| header(code, k).is_some())?;
    Some((kind, b))
}

/// A keyword and the aliases keepalived takes for it.
fn keys_for(key: &'static str) -> Vec<&'static str> {
    match key {
        "lb_algo" => vec!["lb_algo", "lvs_sched"],
        "lb_kind" => vec!["lb_kind", "lvs_method"],
        "retry" => vec!["retry", "nb_get_retry"],
        // The checker's own keywords, named apart in the form from the real server's
        // `weight` and from each other.
        "dns_type" => vec!["type"],
        "dns_name" | "bfd_name" => vec!["name"],
        "check_weight" => vec!["weight"],
        k => vec![k],
    }
}

/// The checker fields each checker type takes: keepalived 2.2's keywords per checker
/// (check_api.c install_checker_common_keywords(): the connect_* keys of the network
/// checkers and the common timers; check_smtp.c `helo_name`; check_dns.c `type`, `name`;
/// check_udp.c `payload`, `require_reply`, `min_reply_length`, `max_reply_length`;
/// check_file.c `track_file`, `weight`; check_bfd.c `name`, `weight`), as rvs-config
/// keepalived `check::keys()` reads them.
fn check_field_applies(kind: &str, key: &str) -> bool {
    let kind = if kind == "ICMP_CHECK" {
        "PING_CHECK"
    } else {
        kind
    };
    let tracked = matches!(kind, "FILE_CHECK" | "BFD_CHECK");
    match key {
        "delay_loop" | "retry" | "delay_before_retry" => !tracked,
        "connect_timeout" | "connect_port" | "connect_ip" => kind != "MISC_CHECK" && !tracked,
        "path" | "status_code" => matches!(kind, "HTTP_GET" | "SSL_GET"),
        "misc_path" | "misc_timeout" => kind == "MISC_CHECK",
        "helo_name" => kind == "SMTP_CHECK",
        "dns_type" | "dns_name" => kind == "DNS_CHECK",
        "payload" | "require_reply" | "min_reply_length" | "max_reply_length" => {
            kind == "UDP_CHECK"
        }
        "track_file" => kind == "FILE_CHECK",
        "bfd_name" => kind == "BFD_CHECK",
        "check_weight" => tracked,
        _ => false,
    }
}

/// The keys of the checker's own block the form edits, in the order new lines are
/// written (`path` and `status_code` are the `url` block's).
const BLOCK_KEYS: [&str; 18] = [
    "connect_timeout",
    "connect_ip",
    "connect_port",
    "delay_loop",
    "retry",
    "delay_before_retry",
    "misc_path",
    "misc_timeout",
    "helo_name",
    "dns_type",
    "dns_name",
    "payload",
    "require_reply",
    "min_reply_length",
    "max_reply_length",
    "track_file",
    "bfd_name",
    "check_weight",
];

const CHECK_KEYS: [&str; 20] = [
    "connect_timeout",
    "connect_ip",
    "connect_port",
    "delay_loop",
    "retry",
    "delay_before_retry",
    "path",
    "status_code",
    "misc_path",
    "misc_timeout",
    "helo_name",
    "dns_type",
    "dns_name",
    "payload",
    "require_reply",
    "min_reply_length",
    "max_reply_length",
    "track_file",
    "bfd_name",
    "check_weight",
];

/// A checker value the form refuses before the parser sees it: one the original would log
/// and ignore (so the form would write a line that does nothing) or could not read.
fn check_checker_value(kind: &str, key: &str, v: &str) -> Result<(), String> {
    let hex = |wild: bool| {
        // keepalived lib/utils.c read_hex_str(): hex digits, bytes apart by spaces or
        // tabs; `x` a wildcard nibble in require_reply (check_udp.c).
        !v.trim().is_empty()
            && v.chars().all(|c| {
                c.is_ascii_hexdigit() || c == ' ' || c == '\t' || (wild && matches!(c, 'x' | 'X'))
            })
    };
    let ok = match key {
        // check_api.c co_ip_handler(): an address.
        "connect_ip" => v.parse::<std::net::IpAddr>().is_ok(),
        // check_api.c co_port_handler(): 1..=65535.
        "connect_port" => v.parse::<u16>().is_ok_and(|p| p > 0),
        // check_dns.c dns_type_handler(): an unknown type is logged and ignored.
        "dns_type" => DNS_TYPES[1..].iter().any(|t| t.eq_ignore_ascii_case(v)),
        // One word: check_dns.c dns_name_handler(), check_file.c track_file_handler(),
        // check_bfd.c bfd_name_handler() read one.
        "dns_name" | "track_file" | "bfd_name" => !v.contains(char::is_whitespace),
        "payload" => hex(false),
        "require_reply" => v == "yes" || hex(true),
        // check_udp.c min/max_length_handler(): 0..=65535.
        "min_reply_length" | "max_reply_length" => v.parse::<u16>().is_ok(),
        // check_file.c track_file_weight_handler() / check_bfd.c bfd_weight_handler(): a
        // number and an optional `reverse` or `noreverse`; rvs-config keepalived
        // `weight_reverse()`'s limits (BFD_CHECK -253..=253).
        "check_weight" => {
            let limit = if kind == "BFD_CHECK" {
                253
            } else {
                i64::from(i32::MAX)
            };
            let w: Vec<&str> = v.split_whitespace().collect();
            w.len() <= 2
                && w.first()
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_some_and(|n| (-limit..=limit).contains(&n))
                && w.get(1)
                    .is_none_or(|r| matches!(*r, "reverse" | "noreverse"))
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key}: not a value keepalived reads here: {v:?}{}",
            match key {
                "connect_ip" => " (an IP address)",
                "connect_port" => " (1-65535)",
                "dns_type" => " (A, NS, CNAME, SOA, MX, TXT or AAAA)",
                "dns_name" | "track_file" | "bfd_name" => " (one word)",
                "payload" => " (hex bytes, e.g. 0a 1b2c)",
                "require_reply" => " (yes, or hex bytes)",
                "min_reply_length" | "max_reply_length" => " (0-65535)",
                "check_weight" if kind == "BFD_CHECK" => {
                    " (-253 to 253, then optionally reverse or noreverse)"
                }
                "check_weight" => " (a number, then optionally reverse or noreverse)",
                _ => "",
            }
        ))
    }
}

/// The form's values for an object (`None`: a new one, all blank).
pub fn values(text: &str, kind: Kind, t: &Target) -> Result<Vec<(&'static str, String)>, String> {
    let lines = lines_of(text);
    let b = find(&lines, t)?;
    let hdr = header(lines[b.header.unwrap_or(0)].code, kind.title()).unwrap_or_default();
    let words: Vec<&str> = hdr.split_whitespace().collect();
    let get = |b: &Block, key: &'static str| {
        key_line(&lines, b, &keys_for(key)).map(|i| {
            let a = args_of(lines[i].code);
            if a.is_empty() { "yes".to_string() } else { a }
        })
    };
    let check = if kind == Kind::Real {
        checker(&lines, &b)
    } else {
        None
    };
    let url = check
        .as_ref()
        .and_then(|(_, c)| children(&lines, c, &["url"]).into_iter().next());
    Ok(kind
        .fields()
        .iter()
        .map(|fd| {
            let v = match (kind, fd.key) {
                (Kind::Virtual | Kind::Real, "address") if words.first() != Some(&"fwmark") => {
                    words.first().map(|s| s.to_string())
                }
                (Kind::Virtual | Kind::Real, "port") if words.first() != Some(&"fwmark") => {
                    words.get(1).map(|s| s.to_string())
                }
                (Kind::Virtual, "fwmark") if words.first() == Some(&"fwmark") => {
                    words.get(1).map(|s| s.to_string())
                }
                (Kind::Virtual, "address" | "port" | "fwmark") => None,
                (Kind::Real, "check") => check.as_ref().map(|(k, _)| k.to_string()),
                (Kind::Real, "path" | "status_code") => url.as_ref().and_then(|u| get(u, fd.key)),
                (Kind::Real, k) if CHECK_KEYS.contains(&k) => {
                    check.as_ref().and_then(|(_, c)| get(c, fd.key))
                }
                (Kind::Vrrp, "virtual_ipaddress") => children(&lines, &b, &["virtual_ipaddress"])
                    .into_iter()
                    .next()
                    .map(|l| {
                        l.inner
                            .filter(|&i| !lines[i].code.is_empty())
                            .map(|i| lines[i].code)
                            .collect::<Vec<_>>()
                            .join("\n")
                    }),
                _ => get(&b, fd.key),
            };
            (fd.key, v.unwrap_or_default())
        })
        .collect())
}

/// Whether a field is a flag keyword (no arguments).
fn is_flag(key: &str) -> bool {
    matches!(key, "inhibit_on_failure" | "nopreempt")
}

/// What a form asks for.
#[derive(Debug, Clone, Default)]
pub struct Edit<'a> {
    /// `apply`/`diff` (edit), `add` (a new object), or `delete`.
    pub op: &'a str,
    /// The object (for `add`: the virtual server a real server is added to).
    pub target: Target,
    /// The fields sent (`key`, value); a field not sent is left as it is.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The file's text after the form's change, and the object's description for the audit.
pub fn edit(text: &str, kind: Kind, e: &Edit<'_>) -> Result<(String, String), String> {
    let field = |k: &str| {
        e.fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.trim())
    };
    let mut t = e.target.clone();
    // What the form showed: a value outside a field's choices that is the file's own (an
    // `lb_kind TUN` with options, a `protocol tcp` in lower case) is kept as it is.
    let shown = if e.op == "add" || e.op == "delete" {
        Vec::new()
    } else {
        values(text, kind, &t)?
    };
    let unchanged = |k: &str, v: &str| shown.iter().any(|(n, c)| *n == k && c == v);
    let mut text = text.to_string();
    let lines = lines_of(&text);
    if e.op == "delete" {
        if kind == Kind::Vrrp {
            return Err("a vrrp_instance is deleted with the whole-file editor".into());
        }
        let b = find(&lines, &t)?;
        let what = describe(&lines, kind, &b);
        return Ok((delete(&text, &b), format!("delete {what}")));
    }
    if e.op == "add" {
        let parent = match kind {
            Kind::Virtual => {
                if odd_layout(&lines, &top(&lines), "virtual_server") {
                    return Err("a virtual_server is laid out as the forms do not edit (`{` on its own line): use the whole-file editor".into());
                }
                top(&lines)
            }
            Kind::Real => find(
                &lines,
                &Target {
                    vs: t.vs,
                    ..Target::default()
                },
            )?,
            Kind::Vrrp => return Err("a vrrp_instance is added with the whole-file editor".into()),
        };
        let args = header_args(kind, &field)?;
        let n = match kind {
            Kind::Virtual => virtuals(&lines).len(),
            _ => children(&lines, &parent, &["real_server"]).len(),
        };
        text = add_block(&text, &parent, kind.title(), &args)?;
        match kind {
            Kind::Virtual => t.vs = Some(n),
            _ => t.rs = Some(n),
        }
    } else {
        // The header: the address and port (or mark) of a virtual or real server.
        if kind != Kind::Vrrp
            && ["address", "port", "fwmark"]
                .iter()
                .any(|k| field(k).is_some())
        {
            let lines = lines_of(&text);
            let b = find(&lines, &t)?;
            let old = header(lines[b.header.unwrap_or(0)].code, kind.title()).unwrap_or_default();
            let args = header_args(kind, &field)?;
            if args != old && old.split_whitespace().next() == Some("group") {
                return Err(
                    "a virtual_server group's header is edited with the whole-file editor".into(),
                );
            }
            if args != old {
                text = set_header(&text, &b, kind.title(), &args)?;
            }
        }
    }
    for fd in kind.fields() {
        let Some(v) = field(fd.key) else { continue };
        if matches!(fd.key, "address" | "port" | "fwmark") && kind != Kind::Vrrp {
            continue;
        }
        if kind == Kind::Real && (fd.key == "check" || CHECK_KEYS.contains(&fd.key)) {
            continue;
        }
        let lines = lines_of(&text);
        let b = find(&lines, &t)?;
        if fd.multi {
            let entries: Vec<&str> = v.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            text = set_list(&text, &b, fd.key, &entries)?;
            continue;
        }
        if !fd.options.is_empty() && !fd.options.contains(&v) && !unchanged(fd.key, v) {
            return Err(format!("{}: one of {}", fd.key, fd.options[1..].join(", ")));
        }
        text = set_in(&text, &b, &keys_for(fd.key), v, is_flag(fd.key))?;
    }
    if kind == Kind::Real {
        text = edit_checker(&text, &t, &field)?;
    }
    let lines = lines_of(&text);
    let b = find(&lines, &t)?;
    let verb = if e.op == "add" { "add" } else { "edit" };
    Ok((
        text.clone(),
        format!("{verb} {}", describe(&lines, kind, &b)),
    ))
}

/// `virtual_server 10.0.0.100 80`.
fn describe(lines: &[Line<'_>], kind: Kind, b: &Block) -> String {
    let h = header(lines[b.header.unwrap_or(0)].code, kind.title()).unwrap_or_default();
    format!("{} {h}", kind.title())
}

/// The header's arguments from the form: `ADDR PORT`, `fwmark N` (virtual servers), or
/// the instance's name.
fn header_args<'a>(kind: Kind, field: &impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
    if kind == Kind::Vrrp {
        let n = field("name").unwrap_or_default();
        crate::panels::check_name(n)?;
        return Ok(n.to_string());
    }
    let addr = field("address").unwrap_or_default();
    let port = field("port").unwrap_or_default();
    let mark = if kind == Kind::Virtual {
        field("fwmark").unwrap_or_default()
    } else {
        ""
    };
    for (k, v) in [("address", addr), ("port", port), ("fwmark", mark)] {
        if v.contains(char::is_whitespace) {
            return Err(format!("{k}: one word: {v:?}"));
        }
    }
    match (addr, port, mark) {
        ("", "", m) if !m.is_empty() => Ok(format!("fwmark {m}")),
        (a, _, m) if !a.is_empty() && !m.is_empty() => {
            Err("give an address and port, or a firewall mark, not both".into())
        }
        ("", _, _) => Err(format!("{}: the address is needed", kind.title())),
        (a, "", _) => Ok(a.to_string()),
        (a, p, _) => Ok(format!("{a} {p}")),
    }
}

/// The real server's checker after the form: the same type edited in place; another
/// type (or none) replaces the block.
fn edit_checker<'a>(
    text: &str,
    t: &Target,
    field: &impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let Some(want) = field("check") else {
        return Ok(text.to_string());
    };
    let mut text = text.to_string();
    let lines = lines_of(&text);
    let rs = find(&lines, t)?;
    let have = checker(&lines, &rs).map(|(k, _)| k);
    // A checker the form does not write (an ICMP_CHECK: PING_CHECK's other name) is kept
    // and its keys edited as PING_CHECK's.
    if !want.is_empty() && !CHECKERS.contains(&want) && have != Some(want) {
        return Err(format!("check: one of {}", CHECKERS.join(", ")));
    }
    if have.is_none() && ALL_CHECKERS.iter().any(|k| odd_layout(&lines, &rs, k)) {
        return Err(
            "the checker is laid out as the forms do not edit: use the whole-file editor".into(),
        );
    }
    for k in CHECK_KEYS {
        if let Some(v) = field(k).filter(|v| !v.is_empty())
            && check_field_applies(want, k)
        {
            check_checker_value(want, k, v)?;
        }
        if field(k).is_some_and(|v| !v.is_empty()) && !check_field_applies(want, k) {
            return Err(format!(
                "{k} is not a key of {}",
                if want.is_empty() {
                    "a real server without a checker"
                } else {
                    want
                }
            ));
        }
    }
    if have != Some(want) {
        if let Some((_, b)) = checker(&lines, &rs) {
            text = delete(&text, &b);
        }
        if want.is_empty() {
            return Ok(text);
        }
        let lines = lines_of(&text);
        let rs = find(&lines, t)?;
        text = add_block(&text, &rs, want, "")?;
    }
    if want.is_empty() {
        return Ok(text);
    }
    for k in BLOCK_KEYS {
        let Some(v) = field(k) else { continue };
        if !check_field_applies(want, k) {
            continue;
        }
        let lines = lines_of(&text);
        let rs = find(&lines, t)?;
        let (_, c) = checker(&lines, &rs).expect("the checker");
        // `require_reply` alone: a reply is needed, whatever it holds (check_udp.c
        // require_reply_handler()).
        let flag = k == "require_reply" && v == "yes";
        text = set_in(&text, &c, &keys_for(k), v, flag)?;
    }
    // A FILE_CHECK without its track_file, or one naming no `track_file` block, and a
    // BFD_CHECK without its name are dropped by keepalived (check_file.c
    // track_file_handler(): "track_file %s not found", file_end_handler(): "FILE_CHECK
    // has no track_file specified - ignoring"; check_bfd.c bfd_end_handler(): "No name
    // has been specified for BFD_CHECKER - skipping"): the form does not write one.
    if let Some((key, form_key)) = match want {
        "FILE_CHECK" => Some(("track_file", "track_file")),
        "BFD_CHECK" => Some(("name", "bfd_name")),
        _ => None,
    } {
        let lines = lines_of(&text);
        let rs = find(&lines, t)?;
        let (_, c) = checker(&lines, &rs).expect("the checker");
        let Some(i) = key_line(&lines, &c, &[key]) else {
            return Err(format!(
                "{form_key}: {want} needs it (keepalived drops a {want} without one)"
            ));
        };
        let name = args_of(lines[i].code);
        if want == "FILE_CHECK"
            && !children(&lines, &top(&lines), &["track_file"])
                .iter()
                .any(|b| {
                    header(lines[b.header.unwrap_or(0)].code, "track_file") == Some(name.as_str())
                })
        {
            return Err(format!(
                "track_file: no `track_file {name} {{` block in the file (keepalived drops a \
                 FILE_CHECK naming none)"
            ));
        }
    }
    if matches!(want, "HTTP_GET" | "SSL_GET") {
        let path = field("path").unwrap_or_default();
        let status = field("status_code").unwrap_or_default();
        let lines = lines_of(&text);
        let rs = find(&lines, t)?;
        let (_, c) = checker(&lines, &rs).expect("the checker");
        let url = children(&lines, &c, &["url"]).into_iter().next();
        if url.is_none() && odd_layout(&lines, &c, "url") {
            return Err(
                "the url block is laid out as the forms do not edit: use the whole-file editor"
                    .into(),
            );
        }
        match url {
            Some(u) if path.is_empty() && status.is_empty() => text = delete(&text, &u),
            None if path.is_empty() && status.is_empty() => {}
            u => {
                if u.is_none() {
                    text = add_block(&text, &c, "url", "")?;
                }
                for (k, v) in [("path", path), ("status_code", status)] {
                    let lines = lines_of(&text);
                    let rs = find(&lines, t)?;
                    let (_, c) = checker(&lines, &rs).expect("the checker");
                    let u = children(&lines, &c, &["url"])
                        .into_iter()
                        .next()
                        .expect("the url");
                    text = set_in(&text, &u, &[k], v, false)?;
                }
            }
        }
    }
    Ok(text)
}

/// Whether the file is keepalived.conf, as the daemon detects it (rvs `load::detect`: a
/// name that says keepalived and does not end `.toml`).
pub fn is_keepalived(path: &std::path::Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.contains("keepalived") && !name.ends_with(".toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: &str = "! Configuration File for keepalived
global_defs {
   router_id LVS_A   # this director
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
    }
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
    real_server 10.0.1.2 80 {
        weight 2
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
        }
    }
}
";

    fn vs(i: usize) -> Target {
        Target {
            vs: Some(i),
            ..Target::default()
        }
    }

    fn rs(i: usize, j: usize) -> Target {
        Target {
            vs: Some(i),
            rs: Some(j),
            vrrp: None,
        }
    }

    fn run(kind: Kind, op: &str, t: Target, fields: &[(&str, &str)]) -> Result<String, String> {
        edit(
            KA,
            kind,
            &Edit {
                op,
                target: t,
                fields: fields.to_vec(),
            },
        )
        .map(|(t, _)| t)
    }

    #[test]
    fn objects_and_values_are_read() {
        let v = list_virtual(KA);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "10.0.0.100 80");
        assert_eq!(v[0].summary, "rr NAT TCP");
        assert_eq!(
            v[0].servers,
            [
                ("10.0.1.1 80".to_string(), "TCP_CHECK".to_string()),
                ("10.0.1.2 80".to_string(), "HTTP_GET".to_string())
            ]
        );
        assert_eq!(list_vrrp(KA)[0].name, "VI_1");
        let vals = values(KA, Kind::Real, &rs(0, 1)).unwrap();
        let get = |k: &str| vals.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("address"), "10.0.1.2");
        assert_eq!(get("check"), "HTTP_GET");
        assert_eq!(get("path"), "/health");
        let vals = values(KA, Kind::Virtual, &vs(0)).unwrap();
        let get = |k: &str| vals.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("lb_algo"), "rr");
        assert_eq!(get("fwmark"), "");
        let t = Target {
            vrrp: Some("VI_1".into()),
            ..Target::default()
        };
        let vals = values(KA, Kind::Vrrp, &t).unwrap();
        assert_eq!(vals.last().unwrap().1, "10.0.0.100/24 dev eth0");
    }

    #[test]
    fn a_virtual_server_form_changes_its_lines_only() {
        let t = run(
            Kind::Virtual,
            "apply",
            vs(0),
            &[
                ("lb_algo", "wlc"),
                ("lb_kind", "FNAT"),
                ("laddr_group_name", "lg1"),
                ("persistence_timeout", "300"),
                ("protocol", "TCP"),
                ("delay_loop", ""),
            ],
        )
        .unwrap();
        let want = KA
            .replace("    lvs_sched rr          # round robin\n", "    lvs_sched wlc          # round robin\n")
            .replace("    lb_kind NAT\n    protocol TCP\n", "    lb_kind FNAT\n    protocol TCP\n    laddr_group_name lg1\n    persistence_timeout 300\n")
            .replace("    delay_loop 6\n", "");
        assert_eq!(t, want);
        let t = run(
            Kind::Virtual,
            "apply",
            vs(0),
            &[("address", ""), ("port", ""), ("fwmark", "7")],
        )
        .unwrap();
        assert_eq!(
            t,
            KA.replace(
                "virtual_server 10.0.0.100 80 {",
                "virtual_server fwmark 7 {"
            )
        );
        assert!(run(Kind::Virtual, "apply", vs(0), &[("lb_algo", "bogus")]).is_err());
        assert!(run(Kind::Virtual, "apply", vs(0), &[("quorum", "1 }")]).is_err());
        assert!(run(Kind::Virtual, "apply", vs(0), &[("quorum", "1 # x")]).is_err());
    }

    #[test]
    fn real_servers_and_checkers() {
        let t = run(
            Kind::Real,
            "apply",
            rs(0, 0),
            &[
                ("weight", "5"),
                ("inhibit_on_failure", "yes"),
                ("check", "TCP_CHECK"),
                ("connect_timeout", "4"),
                ("connect_port", "8080"),
            ],
        )
        .unwrap();
        assert_eq!(
            t,
            KA.replace(
                "        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n",
                "        weight 5\n        inhibit_on_failure\n        TCP_CHECK {\n            connect_timeout 4\n            connect_port 8080\n"
            )
        );
        // Another type replaces the block.
        let t = run(
            Kind::Real,
            "apply",
            rs(0, 0),
            &[
                ("check", "MISC_CHECK"),
                ("misc_path", "\"/bin/check 10.0.1.1\""),
                ("misc_timeout", "5"),
            ],
        )
        .unwrap();
        assert_eq!(
            t,
            KA.replace(
                "        TCP_CHECK {\n            connect_timeout 3\n        }\n",
                "        MISC_CHECK {\n            misc_path \"/bin/check 10.0.1.1\"\n            misc_timeout 5\n        }\n"
            )
        );
        let t = run(
            Kind::Real,
            "apply",
            rs(0, 1),
            &[
                ("check", "HTTP_GET"),
                ("path", "/up"),
                ("status_code", "204"),
            ],
        )
        .unwrap();
        assert_eq!(
            t,
            KA.replace(
                "path /health\n                status_code 200",
                "path /up\n                status_code 204"
            )
        );
        assert!(
            run(
                Kind::Real,
                "apply",
                rs(0, 0),
                &[("check", "TCP_CHECK"), ("misc_path", "/x")]
            )
            .is_err()
        );
        // Add one (with a new HTTP checker) and delete one.
        let t = run(
            Kind::Real,
            "add",
            vs(0),
            &[
                ("address", "10.0.1.3"),
                ("port", "80"),
                ("weight", "1"),
                ("check", "HTTP_GET"),
                ("path", "/"),
                ("status_code", "200"),
            ],
        )
        .unwrap();
        assert_eq!(
            t,
            KA.replace(
                "            }\n        }\n    }\n}\n",
                "            }\n        }\n    }\n    real_server 10.0.1.3 80 {\n        weight 1\n        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n        }\n    }\n}\n"
            )
        );
        let t = run(Kind::Real, "delete", rs(0, 0), &[]).unwrap();
        assert_eq!(t, KA.replace("    real_server 10.0.1.1 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n", ""));
    }

    #[test]
    fn virtual_servers_are_added_and_deleted() {
        let t = run(
            Kind::Virtual,
            "add",
            Target::default(),
            &[
                ("address", "10.0.0.101"),
                ("port", "443"),
                ("lb_algo", "mh"),
                ("lb_kind", "DR"),
                ("protocol", "TCP"),
            ],
        )
        .unwrap();
        assert_eq!(
            t,
            format!(
                "{KA}virtual_server 10.0.0.101 443 {{\n    protocol TCP\n    lb_algo mh\n    lb_kind DR\n}}\n"
            )
        );
        let t = run(Kind::Virtual, "delete", vs(0), &[]).unwrap();
        assert!(t.ends_with("}\n\n# the web tier\n"), "{t}");
    }

    #[test]
    fn vrrp_instances() {
        let t = Target {
            vrrp: Some("VI_1".into()),
            ..Target::default()
        };
        let out = run(
            Kind::Vrrp,
            "apply",
            t.clone(),
            &[
                ("state", "BACKUP"),
                ("priority", "90"),
                ("nopreempt", "yes"),
                ("advert_int", "1"),
                (
                    "virtual_ipaddress",
                    "10.0.0.100/24 dev eth0\r\n10.0.0.101/24 dev eth0\n",
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            KA.replace("    state MASTER\n", "    state BACKUP\n").replace(
                "    priority 100\n    virtual_ipaddress {\n        10.0.0.100/24 dev eth0\n",
                "    priority 90\n    advert_int 1\n    nopreempt\n    virtual_ipaddress {\n        10.0.0.100/24 dev eth0\n        10.0.0.101/24 dev eth0\n"
            )
        );
        assert!(run(Kind::Vrrp, "apply", t, &[("state", "LEADER")]).is_err());
    }

    #[test]
    fn values_outside_the_choices_are_kept_when_unchanged() {
        let t = "virtual_server 10.0.0.1 80 {\n    lb_kind TUN gue 6080\n    protocol tcp\n    real_server 10.0.1.1 80 {\n        SMTP_CHECK {\n            connect_timeout 3\n        }\n    }\n}\n";
        let e = |kind, target, f: Vec<(&'static str, &'static str)>| {
            edit(
                t,
                kind,
                &Edit {
                    op: "apply",
                    target,
                    fields: f,
                },
            )
            .map(|x| x.0)
        };
        let out = e(
            Kind::Virtual,
            vs(0),
            vec![
                ("lb_kind", "TUN gue 6080"),
                ("protocol", "tcp"),
                ("quorum", "2"),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            t.replace("    protocol tcp\n", "    protocol tcp\n    quorum 2\n")
        );
        assert!(e(Kind::Virtual, vs(0), vec![("lb_kind", "TUN ipip")]).is_err());
        let out = e(
            Kind::Real,
            rs(0, 0),
            vec![("check", "SMTP_CHECK"), ("connect_timeout", "5")],
        )
        .unwrap();
        assert_eq!(out, t.replace("connect_timeout 3", "connect_timeout 5"));
        assert!(e(Kind::Real, rs(0, 0), vec![("check", "BOGUS_CHECK")]).is_err());
        // ICMP_CHECK (PING_CHECK's other name) is kept as written and edited as PING_CHECK.
        let icmp = t.replace("SMTP_CHECK", "ICMP_CHECK");
        let out = edit(
            &icmp,
            Kind::Real,
            &Edit {
                op: "apply",
                target: rs(0, 0),
                fields: vec![("check", "ICMP_CHECK"), ("retry", "2")],
            },
        )
        .unwrap()
        .0;
        assert_eq!(
            out,
            icmp.replace(
                "connect_timeout 3\n",
                "connect_timeout 3\n            retry 2\n"
            )
        );
    }

    /// One edit of the real server 10.0.1.1 (TCP_CHECK) of [`KA`].
    fn tcp_to(fields: &[(&str, &str)]) -> Result<String, String> {
        run(Kind::Real, "apply", rs(0, 0), fields)
    }

    #[test]
    fn every_checker_is_written_with_its_own_keys() {
        let tcp = "        TCP_CHECK {\n            connect_timeout 3\n        }\n";
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[
                    ("check", "SMTP_CHECK"),
                    ("connect_timeout", "3"),
                    ("helo_name", "lb.example.com"),
                ],
                "        SMTP_CHECK {\n            connect_timeout 3\n            helo_name lb.example.com\n        }\n",
            ),
            (
                &[
                    ("check", "DNS_CHECK"),
                    ("connect_port", "53"),
                    ("dns_type", "a"),
                    ("dns_name", "www.example.com"),
                ],
                "        DNS_CHECK {\n            connect_port 53\n            type a\n            name www.example.com\n        }\n",
            ),
            (
                &[
                    ("check", "UDP_CHECK"),
                    ("connect_ip", "10.0.1.9"),
                    ("payload", "0a 1b2c"),
                    ("require_reply", "yes"),
                    ("max_reply_length", "512"),
                ],
                "        UDP_CHECK {\n            connect_ip 10.0.1.9\n            payload 0a 1b2c\n            require_reply\n            max_reply_length 512\n        }\n",
            ),
            (
                &[("check", "PING_CHECK"), ("delay_loop", "2"), ("retry", "3")],
                "        PING_CHECK {\n            delay_loop 2\n            retry 3\n        }\n",
            ),
            (
                &[
                    ("check", "BFD_CHECK"),
                    ("bfd_name", "bfd1"),
                    ("check_weight", "-10 reverse"),
                ],
                "        BFD_CHECK {\n            name bfd1\n            weight -10 reverse\n        }\n",
            ),
        ];
        for (fields, block) in cases {
            assert_eq!(
                tcp_to(fields).unwrap(),
                KA.replace(tcp, block),
                "{fields:?}"
            );
        }
        // The same type edited in place: one line changes, a bare require_reply gets bytes.
        let udp = KA.replace(tcp, "        UDP_CHECK {\n            require_reply   # any\n            payload ff\n        }\n");
        let out = edit(
            &udp,
            Kind::Real,
            &Edit {
                op: "apply",
                target: rs(0, 0),
                fields: vec![
                    ("check", "UDP_CHECK"),
                    ("require_reply", "0a"),
                    ("payload", "ff"),
                ],
            },
        )
        .unwrap()
        .0;
        assert_eq!(
            out,
            udp.replace("require_reply   # any", "require_reply 0a   # any")
        );
        // FILE_CHECK follows a track_file block that must be there.
        let tf = format!("track_file up {{\n    file /run/up\n}}\n{KA}");
        let out = edit(
            &tf,
            Kind::Real,
            &Edit {
                op: "apply",
                target: rs(0, 0),
                fields: vec![
                    ("check", "FILE_CHECK"),
                    ("track_file", "up"),
                    ("check_weight", "5"),
                ],
            },
        )
        .unwrap()
        .0;
        assert_eq!(
            out,
            tf.replace(
                tcp,
                "        FILE_CHECK {\n            track_file up\n            weight 5\n        }\n"
            )
        );
        for bad in [
            vec![("check", "FILE_CHECK"), ("track_file", "up")],
            vec![("check", "FILE_CHECK")],
            vec![("check", "BFD_CHECK"), ("bfd_name", "")],
            vec![
                ("check", "FILE_CHECK"),
                ("track_file", "up"),
                ("connect_timeout", "3"),
            ],
            vec![("check", "DNS_CHECK"), ("dns_type", "PTR")],
            vec![("check", "DNS_CHECK"), ("dns_name", "a b")],
            vec![("check", "UDP_CHECK"), ("payload", "0g")],
            vec![("check", "UDP_CHECK"), ("payload", "0x0a")],
            vec![("check", "UDP_CHECK"), ("min_reply_length", "70000")],
            vec![("check", "UDP_CHECK"), ("connect_ip", "host")],
            vec![
                ("check", "BFD_CHECK"),
                ("bfd_name", "b"),
                ("check_weight", "5 sideways"),
            ],
            vec![("check", "SMTP_CHECK"), ("dns_name", "x")],
            vec![("check", "PING_CHECK"), ("helo_name", "x")],
            vec![("check", "TCP_CHECK"), ("connect_port", "0")],
        ] {
            assert!(tcp_to(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn comments_and_groups() {
        let t = "virtual_server group web {\n    lb_algo rr#no space\n    delay_loop 6 ! bang\n}\n";
        let e = |f: Vec<(&'static str, &'static str)>| {
            edit(
                t,
                Kind::Virtual,
                &Edit {
                    op: "apply",
                    target: vs(0),
                    fields: f,
                },
            )
        };
        let vals = values(t, Kind::Virtual, &vs(0)).unwrap();
        assert_eq!(vals[4], ("lb_algo", "rr".to_string()));
        let out = e(vec![
            ("address", "group"),
            ("port", "web"),
            ("lb_algo", "sh"),
            ("delay_loop", "3"),
        ])
        .unwrap()
        .0;
        assert_eq!(
            out,
            t.replace("rr#no space", "sh#no space")
                .replace("6 ! bang", "3 ! bang")
        );
        assert!(e(vec![("address", "10.0.0.1"), ("port", "80")]).is_err());
    }

    #[test]
    fn odd_layouts_are_refused_not_guessed() {
        let odd = "virtual_server 10.0.0.1 80\n{\n    lb_algo rr\n}\n";
        assert!(list_virtual(odd).is_empty());
        assert!(
            edit(
                odd,
                Kind::Virtual,
                &Edit {
                    op: "add",
                    target: Target::default(),
                    fields: vec![("address", "10.0.0.2"), ("port", "80")]
                }
            )
            .is_err()
        );
        let one_line_url = "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        HTTP_GET {\n            url { path / }\n        }\n    }\n}\n";
        assert!(
            edit(
                one_line_url,
                Kind::Real,
                &Edit {
                    op: "apply",
                    target: rs(0, 0),
                    fields: vec![("check", "HTTP_GET"), ("path", "/x")]
                }
            )
            .is_err()
        );
    }
}
