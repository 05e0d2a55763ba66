//! Per-panel forms for lvs.cf: Piranha's GLOBAL SETTINGS, REDUNDANCY, VIRTUAL SERVER, REAL
//! SERVER and MONITORING SCRIPTS panels (piranha 0.8.x `web/secure/*.php`: `global_settings`,
//! `redundancy`, `virtual_edit_virt`, `virtual_edit_real`, `virtual_edit_services`), each
//! a set of `key = value` lines of one block of the file.
//!
//! A panel's form is turned into the file's new text here, line by line: a key that is
//! there has its value replaced on its own line (indentation, the rest of the file, its
//! comments and order untouched), a new key is put after the block's last key, a key
//! left blank is removed (Piranha's "blank send/expect", "no program"). Blocks are added
//! at the end of their parent and deleted whole. The text then takes the whole-file
//! editor's path ([`crate::config::ConfigStore::apply`]: validated by rvs's parser, diff,
//! atomic write with `serial_no` + 1, reload, rollback). Values are written as typed, in
//! lvs.cf's syntax (strings with spaces in double quotes, as Piranha wrote `send`).
//! keepalived.conf and TOML files have no panels: the whole-file editor edits them.

use std::ops::Range;

/// A Piranha panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// GLOBAL SETTINGS (top level).
    Global,
    /// REDUNDANCY (top level).
    Redundancy,
    /// VIRTUAL SERVER (a `virtual NAME { }` block).
    Virtual,
    /// REAL SERVER (a `server NAME { }` block in a virtual one).
    Server,
    /// MONITORING SCRIPTS (keys of a `virtual` block).
    Monitor,
}

/// Every panel, in Piranha's order.
pub const PANELS: [Panel; 5] = [
    Panel::Global,
    Panel::Redundancy,
    Panel::Virtual,
    Panel::Server,
    Panel::Monitor,
];

impl Panel {
    /// From its name in a URL or form.
    pub fn parse(s: &str) -> Option<Panel> {
        PANELS.into_iter().find(|p| p.name() == s)
    }

    /// Its name in URLs and forms.
    pub fn name(self) -> &'static str {
        match self {
            Panel::Global => "global",
            Panel::Redundancy => "redundancy",
            Panel::Virtual => "virtual",
            Panel::Server => "server",
            Panel::Monitor => "monitor",
        }
    }

    /// Its title, as Piranha's tabs read.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Global => "GLOBAL SETTINGS",
            Panel::Redundancy => "REDUNDANCY",
            Panel::Virtual => "VIRTUAL SERVER",
            Panel::Server => "REAL SERVER",
            Panel::Monitor => "MONITORING SCRIPTS",
        }
    }

    /// Its fields: the lvs.cf key and what it is.
    pub fn fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Panel::Global => &[
                ("primary", "Primary server public IP"),
                ("primary_private", "Primary server private IP"),
                (
                    "network",
                    "Use network type: nat, direct, tunnel (rvs: fullnat)",
                ),
                ("nat_router", "NAT router IP and device (IP DEVICE)"),
                ("nat_nmask", "NAT router netmask"),
                ("tcp_timeout", "TCP timeout (seconds)"),
                ("tcpfin_timeout", "TCP FIN timeout (seconds)"),
                ("udp_timeout", "UDP timeout (seconds)"),
                (
                    "fullnat_local",
                    "FullNAT local addresses (rvs; with network = fullnat)",
                ),
                (
                    "fullnat_ports",
                    "FullNAT local ports, LO-HI (rvs; default 1024-65535)",
                ),
            ],
            Panel::Redundancy => &[
                ("backup_active", "Backup enabled (1 or 0)"),
                ("backup", "Redundant server public IP"),
                ("backup_private", "Redundant server private IP"),
                ("keepalive", "Heartbeat interval (seconds)"),
                ("deadtime", "Assume dead after (seconds)"),
                ("heartbeat_port", "Heartbeat runs on port"),
                ("monitor_links", "Monitor NIC links for failures (1 or 0)"),
                ("syncdaemon", "Use sync daemon (1 or 0)"),
                ("syncd_iface", "Sync daemon interface"),
                ("syncd_id", "Sync daemon id"),
            ],
            Panel::Virtual => &[
                ("active", "Active (1 or 0)"),
                ("port", "Application port"),
                ("protocol", "Protocol: tcp or udp"),
                ("address", "Virtual IP address and device (IP DEVICE)"),
                ("vip_nmask", "Virtual IP network mask"),
                ("fwmark", "Firewall mark"),
                ("reentry", "Re-entry time (seconds)"),
                ("timeout", "Service timeout (seconds)"),
                ("quiesce_server", "Quiesce server (1 or 0)"),
                (
                    "load_monitor",
                    "Load monitoring tool: none, uptime, rup, ruptime",
                ),
                (
                    "scheduler",
                    "Scheduling: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos",
                ),
                ("persistent", "Persistence (seconds)"),
                ("pmask", "Persistence network mask"),
                ("sorry_server", "Sorry server IP"),
            ],
            Panel::Server => &[
                ("active", "Active (1 or 0)"),
                ("address", "Address"),
                ("port", "Port (blank: the virtual server's)"),
                ("weight", "Weight"),
            ],
            Panel::Monitor => &[
                ("send_program", "Sending program (blank: none)"),
                ("send", "Send (a quoted string; blank: none)"),
                ("expect", "Expect (a quoted string; blank: none)"),
                (
                    "use_regex",
                    "Treat expect string as a regular expression (1 or 0)",
                ),
                ("expect_program", "Expect program (blank: none)"),
            ],
        }
    }

    /// Its fields that are top-level keys of the file (shown in this panel, written at the
    /// top level): FullNAT's in the VIRTUAL SERVER panel, since rvs-config's lvs.cf parser
    /// reads `network = fullnat`, `fullnat_local` and `fullnat_ports` in the global
    /// section only (lvs.rs `GLOBAL_KEYS`): one pool for every FullNAT virtual server.
    pub fn global_fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Panel::Virtual => &[
                (
                    "network",
                    "Forwarding of every virtual server (global): nat, direct, tunnel, fullnat",
                ),
                (
                    "fullnat_local",
                    "FullNAT local addresses (global, space-separated)",
                ),
                ("fullnat_ports", "FullNAT local ports, LO-HI (global)"),
            ],
            _ => &[],
        }
    }

    /// Whether it edits a virtual block (and names it).
    pub fn needs_virtual(self) -> bool {
        matches!(self, Panel::Virtual | Panel::Server | Panel::Monitor)
    }
}

/// Which block a panel edits: the top level, `virtual V`, or `server S` in `virtual V`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The virtual block's name.
    pub virt: Option<String>,
    /// The server block's name (in `virt`).
    pub server: Option<String>,
}

/// One line's meaning for the editor.
struct Line<'a> {
    /// The text without its comment.
    code: &'a str,
    /// Braces opened minus closed before this line.
    depth: i32,
}

/// The line without a `#` comment (a `#` in double quotes is kept).
fn code_of(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
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
            let code = code_of(l.trim_end_matches(['\n', '\r']));
            let line = Line { code, depth };
            depth += braces(code);
            line
        })
        .collect()
}

/// `virtual NAME {` (or `server NAME {`): the name.
fn header<'a>(code: &'a str, kind: &str) -> Option<&'a str> {
    let rest = code.trim().strip_prefix(kind)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let name = rest.trim().strip_suffix('{')?.trim();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

/// The key of a `key = value` line.
fn key_of(code: &str) -> Option<&str> {
    let (k, _) = code.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.contains(char::is_whitespace)).then_some(k)
}

/// The lines inside a block (after its header, before its closing brace), and the block's
/// depth (the depth of the lines directly in it).
#[derive(Debug, Clone)]
struct Block {
    /// The header line (None: the top level).
    header: Option<usize>,
    /// The lines in it.
    inner: Range<usize>,
    depth: i32,
}

fn top(lines: &[Line<'_>]) -> Block {
    Block {
        header: None,
        inner: 0..lines.len(),
        depth: 0,
    }
}

/// The block `kind name` directly in `parent`.
fn child(lines: &[Line<'_>], parent: &Block, kind: &str, name: &str) -> Option<Block> {
    let h = parent
        .inner
        .clone()
        .find(|&i| lines[i].depth == parent.depth && header(lines[i].code, kind) == Some(name))?;
    let close = (h + 1..parent.inner.end)
        .find(|&i| lines[i].depth == parent.depth + 1 && braces(lines[i].code) < 0)?;
    Some(Block {
        header: Some(h),
        inner: h + 1..close,
        depth: parent.depth + 1,
    })
}

fn find(lines: &[Line<'_>], scope: &Scope) -> Result<Block, String> {
    let mut b = top(lines);
    if let Some(v) = &scope.virt {
        b = child(lines, &b, "virtual", v).ok_or_else(|| format!("no virtual server {v:?}"))?;
        if let Some(s) = &scope.server {
            b = child(lines, &b, "server", s)
                .ok_or_else(|| format!("no real server {s:?} in virtual server {v:?}"))?;
        }
    } else if scope.server.is_some() {
        return Err("a real server is in a virtual server: name it".into());
    }
    Ok(b)
}

/// The key's line directly in `b`.
fn key_line(lines: &[Line<'_>], b: &Block, key: &str) -> Option<usize> {
    b.inner
        .clone()
        .find(|&i| lines[i].depth == b.depth && key_of(lines[i].code) == Some(key))
}

/// The value of `key` in `scope` (as written, comment removed), if it is there.
pub fn get(text: &str, scope: &Scope, key: &str) -> Option<String> {
    let lines = lines_of(text);
    let b = find(&lines, scope).ok()?;
    let i = key_line(&lines, &b, key)?;
    Some(lines[i].code.split_once('=')?.1.trim().to_string())
}

/// The names of the blocks `kind` directly in `scope` (`virtual` at the top, `server` in
/// a virtual one).
pub fn names(text: &str, scope: &Scope, kind: &str) -> Vec<String> {
    let lines = lines_of(text);
    let Ok(b) = find(&lines, scope) else {
        return Vec::new();
    };
    b.inner
        .filter(|&i| lines[i].depth == b.depth)
        .filter_map(|i| header(lines[i].code, kind).map(String::from))
        .collect()
}

/// A value from a form: one line, no braces (a form cannot open or close a block).
fn check_value(key: &str, v: &str) -> Result<(), String> {
    if v.contains(['\n', '\r', '{', '}']) {
        return Err(format!("{key}: a value is one line without braces: {v:?}"));
    }
    Ok(())
}

/// A block's name: letters, digits, `.`, `_`, `-` (as Piranha's forms allowed).
pub fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.len() > 64
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "name {n:?}: 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// The indentation of the keys directly in `b` (that of one there, else the header's and
/// four spaces).
fn indent_in(text_lines: &[&str], lines: &[Line<'_>], b: &Block) -> String {
    let lead = |s: &str| s[..s.len() - s.trim_start().len()].to_string();
    if let Some(i) = b
        .inner
        .clone()
        .find(|&i| lines[i].depth == b.depth && key_of(lines[i].code).is_some())
    {
        return lead(text_lines[i]);
    }
    match b.header {
        Some(h) => lead(text_lines[h]) + "    ",
        None => String::new(),
    }
}

/// Set `key` to `value` in `scope`, or remove it when `value` is blank: the new text.
pub fn set(text: &str, scope: &Scope, key: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    check_value(key, value)?;
    let lines = lines_of(text);
    let b = find(&lines, scope)?;
    let mut out: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    if let Some(l) = out.last_mut()
        && !l.ends_with('\n')
    {
        l.push('\n');
    }
    match key_line(&lines, &b, key) {
        Some(i) if value.is_empty() => {
            out.remove(i);
        }
        Some(i) => {
            let old = &out[i];
            let lead = &old[..old.len() - old.trim_start().len()];
            // A comment after the value stays.
            let comment = &old.trim_end_matches(['\n', '\r'])[lines[i].code.trim_end().len()..];
            out[i] = format!("{lead}{key} = {value}{comment}\n");
        }
        None if value.is_empty() => {}
        None => {
            let raw: Vec<&str> = text.split_inclusive('\n').collect();
            let indent = indent_in(&raw, &lines, &b);
            // After the block's last key directly in it, else at its start.
            let at = b
                .inner
                .clone()
                .rev()
                .find(|&i| lines[i].depth == b.depth && key_of(lines[i].code).is_some())
                .map_or(b.inner.start, |i| i + 1);
            out.insert(at, format!("{indent}{key} = {value}\n"));
        }
    }
    Ok(out.concat())
}

/// Add an empty block `kind name` (with `active = 0`, as Piranha's "add" made one) at the
/// end of `scope`: the new text.
pub fn add_block(text: &str, scope: &Scope, kind: &str, name: &str) -> Result<String, String> {
    check_name(name)?;
    let lines = lines_of(text);
    let b = find(&lines, scope)?;
    if child(&lines, &b, kind, name).is_some() {
        return Err(format!("{kind} {name:?} is there already"));
    }
    let raw: Vec<&str> = text.split_inclusive('\n').collect();
    let lead = match b.header {
        Some(h) => raw[h][..raw[h].len() - raw[h].trim_start().len()].to_string() + "    ",
        None => String::new(),
    };
    let block = format!("{lead}{kind} {name} {{\n{lead}    active = 0\n{lead}}}\n");
    let mut out: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    if let Some(l) = out.last_mut()
        && !l.ends_with('\n')
    {
        l.push('\n');
    }
    out.insert(b.inner.end, block);
    Ok(out.concat())
}

/// Remove the block `scope` names (a virtual server, or a real server in one): the new
/// text.
pub fn delete_block(text: &str, scope: &Scope) -> Result<String, String> {
    if scope.virt.is_none() {
        return Err("name the virtual server (and real server) to delete".into());
    }
    let lines = lines_of(text);
    let b = find(&lines, scope)?;
    let h = b.header.expect("a named block");
    Ok(text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i < h || *i > b.inner.end)
        .map(|(_, l)| l)
        .collect())
}

/// Whether the file is lvs.cf, as the daemon detects it by name (`load::detect`: a name
/// ending `.cf` that does not say keepalived).
pub fn is_lvs_cf(path: &std::path::Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".cf") && !name.contains("keepalived")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CF: &str = r#"serial_no = 4
# the primary
primary = 10.0.0.1 # here
network = nat
virtual web {
    active = 1   # on
    address = 10.0.0.100 eth0:1
    port = 80
    send = "GET / # not a comment"
    server a {
        address = 10.0.1.1
        weight = 1
    }
    server b {
        address = 10.0.1.2
    }
}
virtual mail {
    port = 25
}
"#;

    fn vs(v: &str) -> Scope {
        Scope {
            virt: Some(v.into()),
            server: None,
        }
    }

    fn rs(v: &str, s: &str) -> Scope {
        Scope {
            virt: Some(v.into()),
            server: Some(s.into()),
        }
    }

    #[test]
    fn values_are_read_from_their_block() {
        assert_eq!(
            get(CF, &Scope::default(), "primary").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(get(CF, &vs("web"), "port").as_deref(), Some("80"));
        assert_eq!(get(CF, &vs("mail"), "port").as_deref(), Some("25"));
        assert_eq!(
            get(CF, &rs("web", "b"), "address").as_deref(),
            Some("10.0.1.2")
        );
        assert_eq!(get(CF, &rs("web", "b"), "weight"), None);
        // A server's key is not its virtual server's.
        assert_eq!(get(CF, &vs("web"), "weight"), None);
        assert_eq!(
            get(CF, &vs("web"), "send").as_deref(),
            Some("\"GET / # not a comment\"")
        );
        assert_eq!(names(CF, &Scope::default(), "virtual"), ["web", "mail"]);
        assert_eq!(names(CF, &vs("web"), "server"), ["a", "b"]);
    }

    #[test]
    fn a_set_changes_one_line_and_keeps_the_rest() {
        let t = set(CF, &Scope::default(), "primary", "10.0.0.9").unwrap();
        assert_eq!(
            t,
            CF.replace("primary = 10.0.0.1 # here", "primary = 10.0.0.9 # here")
        );
        let t = set(CF, &vs("web"), "active", "0").unwrap();
        assert_eq!(t, CF.replace("active = 1   # on", "active = 0   # on"));
        // A new key goes after the block's last key, indented as its keys are.
        let t = set(CF, &rs("web", "b"), "weight", "5").unwrap();
        assert_eq!(
            t,
            CF.replace(
                "address = 10.0.1.2\n",
                "address = 10.0.1.2\n        weight = 5\n"
            )
        );
        let t = set(CF, &Scope::default(), "backup", "10.0.0.2").unwrap();
        assert_eq!(
            t,
            CF.replace("network = nat\n", "network = nat\nbackup = 10.0.0.2\n")
        );
        let t = set(CF, &vs("mail"), "scheduler", "wlc").unwrap();
        assert!(
            t.ends_with("virtual mail {\n    port = 25\n    scheduler = wlc\n}\n"),
            "{t}"
        );
        // Blank removes (Piranha's "blank send"); blank for a missing key changes nothing.
        let t = set(CF, &vs("web"), "send", "").unwrap();
        assert_eq!(t, CF.replace("    send = \"GET / # not a comment\"\n", ""));
        assert_eq!(set(CF, &vs("web"), "expect", " ").unwrap(), CF);
        // A form cannot open a block or add a line.
        assert!(set(CF, &vs("web"), "port", "80\nserver x {").is_err());
        assert!(set(CF, &vs("web"), "port", "80 }").is_err());
        assert!(set(CF, &vs("nope"), "port", "80").is_err());
    }

    #[test]
    fn blocks_are_added_and_deleted_whole() {
        let t = add_block(CF, &vs("web"), "server", "c").unwrap();
        assert_eq!(
            t,
            CF.replace(
                "        address = 10.0.1.2\n    }\n}\n",
                "        address = 10.0.1.2\n    }\n    server c {\n        active = 0\n    }\n}\n"
            )
        );
        let t = set(&t, &rs("web", "c"), "address", "10.0.1.3").unwrap();
        assert!(
            t.contains("    server c {\n        active = 0\n        address = 10.0.1.3\n    }\n"),
            "{t}"
        );
        let t = add_block(CF, &Scope::default(), "virtual", "dns").unwrap();
        assert_eq!(t, format!("{CF}virtual dns {{\n    active = 0\n}}\n"));
        assert!(add_block(CF, &vs("web"), "server", "a").is_err());
        assert!(add_block(CF, &vs("web"), "server", "x y").is_err());
        let t = delete_block(CF, &rs("web", "a")).unwrap();
        assert_eq!(
            t,
            CF.replace(
                "    server a {\n        address = 10.0.1.1\n        weight = 1\n    }\n",
                ""
            )
        );
        let t = delete_block(CF, &vs("mail")).unwrap();
        assert_eq!(t, CF.replace("virtual mail {\n    port = 25\n}\n", ""));
        assert!(delete_block(CF, &Scope::default()).is_err());
    }

    #[test]
    fn only_lvs_cf_has_panels() {
        assert!(is_lvs_cf("/etc/sysconfig/ha/lvs.cf".as_ref()));
        assert!(!is_lvs_cf("/etc/keepalived/keepalived.conf".as_ref()));
        assert!(!is_lvs_cf("/etc/rvs/rvs.toml".as_ref()));
    }
}
