//! Firewall marks the way the Red Hat documents give them: the director's netfilter MARK
//! rules, read from `iptables-save -t mangle` / `ip6tables-save -t mangle` output and from
//! `nft -j list ruleset` (JSON), compiled into the engine's classifier rules
//! ([`FwmarkRule`]).
//!
//! Kernel LVS never classifies: `iptables -t mangle -A PREROUTING -p tcp -d VIP/32 --dport
//! 80 -j MARK --set-mark 80` marks the skb and IPVS looks the mark up. A userspace director
//! reads frames before netfilter runs, so it never sees those marks; rvs reads the rules
//! instead and does their matching itself.
//!
//! Semantics kept: MARK is not a terminating target, so when several rules match a packet
//! the *last* one run decides its mark (`xt_MARK.c` `mark_tg`: `skb->mark = (skb->mark &
//! ~mark_mask) ^ mark`, then `XT_CONTINUE`). Chains run by hook (prerouting, then input —
//! IPVS schedules at `NF_INET_LOCAL_IN` after the mangle table's INPUT chain) and, within a
//! hook, by priority (iptables' mangle table is `NF_IP_PRI_MANGLE`, -150). The classifier
//! is first-match, so [`compile`] reverses that order.
//!
//! What rvs can express per rule: `-p tcp|udp`, `-d ADDR[/len]`, `-s ADDR[/len]`, `-i
//! IFACE` (checked against the interface each VIP's traffic arrives on), `--dport N|N:M`,
//! `-m multiport --dports a,b,c:d`, `-m tcp|udp|comment`, and `-j MARK --set-mark N` (also
//! `--set-xmark N/0xffffffff`, which is how `iptables-save` prints it); in nftables the same
//! matches (`ip daddr`, `ip6 saddr`, `tcp dport { 80, 443 }`, `meta l4proto`, `iifname`)
//! and `meta mark set N`. A rule giving a mark some fwmark virtual service uses, with
//! anything else (`-m state`, `--sport`, a mask, negation, a named set, a jump target
//! chain), is skipped with a warning at the rule. Rules giving marks no service uses are
//! skipped silently, except that they still override earlier rules (a later MARK wins).
//!
//! This module is pure: it takes the commands' output as text. Running them is the
//! daemon's job.

use crate::diag::{Diagnostic, Place, Severity};
use core::ops::Range;
use rvs_core::model::{Family, FwmarkRule, Prefix, Protocol};
use std::net::IpAddr;

/// What the rules are read against: the director's fwmark services and VIPs.
#[derive(Debug, Clone, Copy)]
pub struct Director<'a> {
    /// The marks of the fwmark virtual services: only rules giving one of these matter.
    pub marks: &'a [u32],
    /// Each VIP and the interface its traffic arrives on (None: not known), for `-i`.
    pub vips: &'a [(IpAddr, Option<String>)],
}

/// The netfilter hook a chain is attached to, in the order a packet for the director
/// meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    Prerouting,
    /// `NF_INET_LOCAL_IN` (before IPVS, which runs at `NF_IP_PRI_NAT_SRC - 2`).
    Input,
}

/// Where a rule runs: its hook, then its chain's priority within the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The hook.
    pub hook: Hook,
    /// The chain's priority (lower runs first).
    pub priority: i32,
}

/// `NF_IP_PRI_MANGLE`: the iptables mangle table's priority on every hook.
pub const MANGLE_PRIORITY: i32 = -150;

/// A MARK rule rvs can express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marking {
    /// Where it runs.
    pub position: Position,
    /// The mark it sets (0 clears the mark).
    pub mark: u32,
    /// The classifier rules it stands for: one per destination, source and port range.
    pub rules: Vec<FwmarkRule>,
    /// Where it is written.
    pub place: Place,
}

/// The MARK rules read from one command's output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// The expressible MARK rules, in the order netfilter runs them within their chain.
    pub markings: Vec<Marking>,
    /// Rules skipped because rvs cannot express them (for marks a service uses), and
    /// output that could not be read.
    pub warnings: Vec<Diagnostic>,
}

/// What rvs expresses, said where a rule is skipped.
const SUPPORTED_IPT: &str = "-p tcp|udp, -s ADDR[/len], -d ADDR[/len], -i IFACE, \
                             --dport N|N:M, -m multiport --dports a,b,c:d, -m comment, \
                             -j MARK --set-mark N";
const SUPPORTED_NFT: &str = "ip/ip6 saddr and daddr, meta l4proto or ip protocol tcp|udp, \
                             tcp/udp/th dport with a port, range or anonymous set, iifname, \
                             meta mark set N";

/// An input-interface match: a name, or a prefix (`eth+` in iptables, `eth*` in nftables).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Iface {
    name: String,
    wildcard: bool,
}

impl Iface {
    fn parse(s: &str, wildcard_char: char) -> Iface {
        match s.strip_suffix(wildcard_char) {
            Some(p) => Iface {
                name: p.to_string(),
                wildcard: true,
            },
            None => Iface {
                name: s.to_string(),
                wildcard: false,
            },
        }
    }

    fn matches(&self, dev: &str) -> bool {
        if self.wildcard {
            dev.starts_with(&self.name)
        } else {
            dev == self.name
        }
    }
}

/// A rule's matches, as far as rvs can express them.
#[derive(Debug, Clone, Default)]
struct Matches {
    /// The families the rule applies to (empty: both).
    families: Vec<Family>,
    protocol: Option<Protocol>,
    /// Destination prefixes (empty: any).
    dst: Vec<Prefix>,
    /// Source prefixes (empty: any).
    src: Vec<Prefix>,
    /// Destination port ranges (empty: any).
    ports: Vec<(u16, u16)>,
    iface: Option<Iface>,
}

/// Expand a rule's matches into classifier rules, or say why rvs cannot: `-i` names an
/// interface on which none of the VIPs the rule covers receives traffic.
fn expand(
    m: &Matches,
    mark: u32,
    dir: &Director<'_>,
    iface_words: &str,
) -> Result<Vec<FwmarkRule>, String> {
    let families: Vec<Family> = if !m.families.is_empty() {
        m.families.clone()
    } else {
        vec![Family::V4, Family::V6]
    };
    let any = |f: Family| Prefix {
        addr: match f {
            Family::V4 => IpAddr::from([0u8; 4]),
            Family::V6 => IpAddr::from([0u8; 16]),
        },
        len: 0,
    };
    let mut dsts: Vec<Prefix> = if m.dst.is_empty() {
        families.iter().map(|f| any(*f)).collect()
    } else {
        m.dst.clone()
    };
    if let Some(iface) = &m.iface {
        let mut narrowed = Vec::new();
        let mut elsewhere = Vec::new();
        for d in &dsts {
            let covered: Vec<&(IpAddr, Option<String>)> =
                dir.vips.iter().filter(|(a, _)| d.contains(*a)).collect();
            let on: Vec<IpAddr> = covered
                .iter()
                .filter(|(_, dev)| dev.as_deref().is_none_or(|dev| iface.matches(dev)))
                .map(|(a, _)| *a)
                .collect();
            if covered.is_empty() || on.len() == covered.len() {
                // No VIP to judge by, or every VIP it covers arrives there: `-i` holds.
                narrowed.push(*d);
            } else {
                // Only the VIPs on that interface.
                narrowed.extend(on.iter().map(|a| Prefix {
                    addr: *a,
                    len: Family::of(a).max_prefix(),
                }));
                for (a, dev) in covered {
                    if let Some(dev) = dev
                        && !iface.matches(dev)
                    {
                        elsewhere.push(format!("{a} on {dev}"));
                    }
                }
            }
        }
        if narrowed.is_empty() {
            return Err(format!(
                "`{iface_words}`: rvs receives the traffic of the VIPs this rule covers on \
                 other interfaces ({}), so it never matches",
                elsewhere.join(", ")
            ));
        }
        dsts = narrowed;
    }
    let srcs: Vec<Option<Prefix>> = if m.src.is_empty() {
        vec![None]
    } else {
        m.src.iter().copied().map(Some).collect()
    };
    let ports = if m.ports.is_empty() {
        vec![(0, 65_535)]
    } else {
        m.ports.clone()
    };
    let mut out = Vec::new();
    for d in &dsts {
        let f = Family::of(&d.addr);
        if !families.contains(&f) {
            continue;
        }
        for s in &srcs {
            if s.is_some_and(|s| Family::of(&s.addr) != f) {
                continue;
            }
            for p in &ports {
                out.push(FwmarkRule {
                    protocol: m.protocol,
                    dst: *d,
                    src: *s,
                    ports: *p,
                    mark,
                });
            }
        }
    }
    Ok(out)
}

/// Byte offsets of each line's start in `text`.
fn line_spans(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.trim_end_matches(['\n', '\r']).len();
        out.push(start..end);
        start += line.len();
    }
    out
}

/// A prefix `ADDR`, `ADDR/LEN` or `ADDR/MASK` (contiguous dotted mask).
fn parse_prefix(s: &str) -> Option<Prefix> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = Family::of(&addr).max_prefix();
    let len = match l {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            Ok(_) => return None,
            Err(_) => {
                let mask: IpAddr = l.parse().ok()?;
                let bits: u128 = match mask {
                    IpAddr::V4(m) if addr.is_ipv4() => u128::from(u32::from(m)) << 96,
                    IpAddr::V6(m) if addr.is_ipv6() => u128::from(m),
                    _ => return None,
                };
                let ones = bits.leading_ones();
                if bits.checked_shl(ones).unwrap_or(0) != 0 {
                    return None; // not contiguous
                }
                u8::try_from(ones).ok().filter(|n| *n <= max)?
            }
        },
    };
    Some(Prefix { addr, len })
}

/// A number in decimal or `0x` hex.
fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `N`, `N:M`, `N:` or `:M` (iptables' port ranges).
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once(':') {
        None => s.parse().ok().map(|p| (p, p)),
        Some((lo, hi)) => {
            let lo = if lo.is_empty() { 0 } else { lo.parse().ok()? };
            let hi = if hi.is_empty() {
                65_535
            } else {
                hi.parse().ok()?
            };
            (lo <= hi).then_some((lo, hi))
        }
    }
}

fn protocol_named(s: &str) -> Option<Option<Protocol>> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Some(Some(Protocol::Tcp)),
        "udp" | "17" => Some(Some(Protocol::Udp)),
        "all" | "0" => Some(None),
        _ => None,
    }
}

/// One word of an `iptables-save` line, with its byte span in the output.
struct Word<'t> {
    text: std::borrow::Cow<'t, str>,
    span: Range<usize>,
}

/// Split a line as `iptables-save` quotes it: words separated by spaces, `"..."` with
/// backslash escapes (comments).
fn words(line: &str, base: usize) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'"' {
            let mut s = String::new();
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch_len = line[i..].chars().next().map_or(1, char::len_utf8);
                s.push_str(&line[i..i + ch_len]);
                i += ch_len;
            }
            i = (i + 1).min(b.len());
            out.push(Word {
                text: s.into(),
                span: base + start..base + i,
            });
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Word {
                text: line[start..i].into(),
                span: base + start..base + i,
            });
        }
    }
    out
}

/// Read `iptables-save` (or `ip6tables-save`, `family` V6) output: the MARK rules of the
/// mangle table's PREROUTING and INPUT chains. `shown` names the command in diagnostics
/// (e.g. `iptables-save -t mangle`); lines are the output's lines.
pub fn parse_iptables_save(text: &str, shown: &str, family: Family, dir: &Director<'_>) -> Ruleset {
    let mut out = Ruleset::default();
    let mut table = String::new();
    for line_span in line_spans(text) {
        let line = &text[line_span.clone()];
        let trimmed = line.trim_start();
        if let Some(t) = trimmed.strip_prefix('*') {
            table = t.trim().to_string();
            continue;
        }
        if table != "mangle" {
            continue;
        }
        let w = words(line, line_span.start);
        // `iptables-save -c` puts `[packets:bytes]` first.
        let w: Vec<Word<'_>> = w
            .into_iter()
            .skip_while(|w| w.text.starts_with('['))
            .collect();
        if w.len() < 2 || (w[0].text != "-A" && w[0].text != "--append") {
            continue;
        }
        let chain = w[1].text.to_string();
        let rule = ipt_rule(&w[2..], family);
        let Some(rule) = rule else { continue };
        let place = Place::new(text, shown, line_span.clone());
        let used = dir.marks.contains(&rule.mark);
        let position = match chain.as_str() {
            "PREROUTING" => Some(Hook::Prerouting),
            "INPUT" => Some(Hook::Input),
            _ => None,
        };
        let warn = |out: &mut Ruleset, span: Range<usize>, msg: String| {
            out.warnings.push(Diagnostic::new(
                text,
                shown,
                span,
                Severity::Warning,
                msg,
                Some(SUPPORTED_IPT.to_string()),
            ));
        };
        match (position, rule.result) {
            // FORWARD, OUTPUT, POSTROUTING: not on the way of packets to the director.
            (None, _) if matches!(chain.as_str(), "FORWARD" | "OUTPUT" | "POSTROUTING") => {}
            (None, _) => {
                if used {
                    warn(
                        &mut out,
                        w[1].span.clone(),
                        format!(
                            "this rule gives mark {} in chain `{chain}`, which rvs does not \
                             read (it follows no jumps; only PREROUTING and INPUT): rule skipped",
                            rule.mark
                        ),
                    );
                }
            }
            (Some(_), Err((span, what))) => {
                if used {
                    warn(
                        &mut out,
                        span,
                        format!(
                            "this rule gives mark {}, but rvs cannot express {what}: rule skipped",
                            rule.mark
                        ),
                    );
                }
            }
            (Some(hook), Ok(m)) => match expand(&m, rule.mark, dir, &rule.iface_words) {
                Ok(rules) => out.markings.push(Marking {
                    position: Position {
                        hook,
                        priority: MANGLE_PRIORITY,
                    },
                    mark: rule.mark,
                    rules,
                    place,
                }),
                Err(why) => {
                    if used {
                        warn(
                            &mut out,
                            rule.iface_span.clone(),
                            format!("this rule gives mark {}: {why}: rule skipped", rule.mark),
                        );
                    }
                }
            },
        }
    }
    out
}

/// A MARK rule of `iptables-save`: its mark and its matches, or the first thing rvs cannot
/// express (span, words).
struct IptRule {
    mark: u32,
    result: Result<Matches, (Range<usize>, String)>,
    iface_words: String,
    iface_span: Range<usize>,
}

/// Read one rule's words after `-A CHAIN`. None when it is not a MARK rule or gives no
/// readable mark value.
fn ipt_rule(w: &[Word<'_>], family: Family) -> Option<IptRule> {
    let mut m = Matches {
        families: vec![family],
        ..Matches::default()
    };
    let mut problem: Option<(Range<usize>, String)> = None;
    let mut note = |span: &Range<usize>, what: String| {
        if problem.is_none() {
            problem = Some((span.clone(), what));
        }
    };
    let mut target: Option<&str> = None;
    let mut mark: Option<u32> = None;
    let mut iface_words = String::new();
    let mut iface_span = 0..0;
    // Inside the options of a module rvs cannot express: its options are its own.
    let mut foreign_module = false;
    let mut negate: Option<Range<usize>> = None;
    let mut i = 0;
    let value = |i: usize| w.get(i + 1).map(|v| v.text.as_ref());
    while i < w.len() {
        let opt = w[i].text.as_ref();
        let span = w[i].span.clone();
        if opt == "!" {
            negate = Some(span);
            i += 1;
            continue;
        }
        let is_option = opt.starts_with('-');
        if !is_option {
            i += 1;
            continue;
        }
        // Each option takes at most one value word (iptables-save prints no others).
        let val = value(i).filter(|v| !v.starts_with('-'));
        let n_words = 1 + usize::from(val.is_some());
        let whole = |n: usize| {
            let end = w.get(i + n).map_or(span.end, |v| v.span.end);
            span.start..end
        };
        if let Some(neg) = negate.take() {
            let words = match val {
                Some(v) => format!("! {opt} {v}"),
                None => format!("! {opt}"),
            };
            note(
                &(neg.start..whole(n_words - 1).end),
                format!("`{words}` (negation)"),
            );
        }
        match opt {
            "-m" | "--match" => {
                let name = val.unwrap_or("");
                foreign_module = !matches!(name, "tcp" | "udp" | "multiport" | "comment");
                if foreign_module {
                    note(&whole(1), format!("`-m {name}`"));
                }
                i += n_words;
                continue;
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                target = val;
                foreign_module = false;
                i += n_words;
                continue;
            }
            _ => {}
        }
        if target == Some("MARK") {
            match opt {
                "--set-mark" | "--set-xmark" => {
                    let v = val.unwrap_or("");
                    let (value, mask) = match v.split_once('/') {
                        Some((a, b)) => (a, Some(b)),
                        None => (v, None),
                    };
                    mark = parse_u32(value);
                    if let Some(mask) = mask
                        && parse_u32(mask) != Some(u32::MAX)
                    {
                        note(
                            &whole(1),
                            format!("`{opt} {v}` (a mask: rvs sets whole marks only)"),
                        );
                    }
                }
                "--and-mark" | "--or-mark" | "--xor-mark" => {
                    mark = val.and_then(parse_u32);
                    note(&whole(1), format!("`{opt}` (rvs sets whole marks only)"));
                }
                _ => note(&whole(n_words - 1), format!("`{opt}`")),
            }
            i += n_words;
            continue;
        }
        if target.is_some() {
            // Options of another target: not a MARK rule anyway.
            i += 1;
            continue;
        }
        match opt {
            "-p" | "--protocol" => match val.and_then(protocol_named) {
                Some(p) => m.protocol = p,
                None => note(&whole(1), format!("`-p {}`", val.unwrap_or(""))),
            },
            "-d" | "--destination" | "-s" | "--source" => {
                let v = val.unwrap_or("");
                // `-d a,b` is several rules in iptables; iptables-save prints one each.
                let mut prefixes = Vec::new();
                for part in v.split(',') {
                    match parse_prefix(part) {
                        Some(p) if Family::of(&p.addr) == family => prefixes.push(p),
                        _ => note(&whole(1), format!("`{opt} {v}`")),
                    }
                }
                if opt.starts_with("-d") || opt == "--destination" {
                    m.dst.extend(prefixes);
                } else {
                    m.src.extend(prefixes);
                }
            }
            "-i" | "--in-interface" => {
                let v = val.unwrap_or("");
                m.iface = Some(Iface::parse(v, '+'));
                iface_words = format!("-i {v}");
                iface_span = whole(1);
            }
            "--dport" | "--destination-port" if !foreign_module => {
                match val.and_then(parse_port_range) {
                    Some(r) => m.ports.push(r),
                    None => note(&whole(1), format!("`{opt} {}`", val.unwrap_or(""))),
                }
            }
            "--dports" | "--destination-ports" if !foreign_module => {
                let v = val.unwrap_or("");
                for part in v.split(',') {
                    match parse_port_range(part) {
                        Some(r) => m.ports.push(r),
                        None => note(&whole(1), format!("`{opt} {v}`")),
                    }
                }
            }
            "--comment" if !foreign_module => {}
            _ if foreign_module => {}
            _ => note(&whole(n_words - 1), format!("`{opt}`")),
        }
        i += n_words;
    }
    if target != Some("MARK") {
        return None;
    }
    let mark = mark?;
    Some(IptRule {
        mark,
        result: match problem {
            Some(p) => Err(p),
            None => Ok(m),
        },
        iface_words,
        iface_span,
    })
}

/// One element's line in [`nft_listing`], and its rule expressions' spans in that text.
type ListedElement = (Range<usize>, Vec<Range<usize>>);

/// The text diagnostics about `nft -j list ruleset` point into: one line per element of
/// its `nftables` array (table, chain, set, rule, in the output's order), each rule written
/// in nft's words (`rule inet lvs prerouting handle 12: ct state new ip daddr 10.1.0.100
/// ...`). Returns the text and, per element, its line's span and its rule expressions'
/// spans.
fn nft_listing(elements: &[serde_json::Value]) -> (String, Vec<ListedElement>) {
    let mut s = String::new();
    let mut spans = Vec::new();
    for e in elements {
        let start = s.len();
        let mut exprs = Vec::new();
        match e.as_object().and_then(|o| o.iter().next()) {
            Some((kind, body)) if kind == "rule" => {
                s.push_str(&format!(
                    "rule {} {} {} handle {}:",
                    str_of(body, "family"),
                    str_of(body, "table"),
                    str_of(body, "chain"),
                    body.get("handle")
                        .map_or("?".to_string(), ToString::to_string)
                ));
                for x in body
                    .get("expr")
                    .and_then(|x| x.as_array())
                    .into_iter()
                    .flatten()
                {
                    s.push(' ');
                    let at = s.len();
                    s.push_str(&nft_words(x));
                    exprs.push(at..s.len());
                }
            }
            Some((kind, body)) if kind == "chain" => {
                s.push_str(&format!(
                    "chain {} {} {}",
                    str_of(body, "family"),
                    str_of(body, "table"),
                    str_of(body, "name")
                ));
                if let Some(h) = body.get("hook").and_then(|h| h.as_str()) {
                    s.push_str(&format!(
                        " {{ type {} hook {h} priority {}; }}",
                        str_of(body, "type"),
                        body.get("prio")
                            .map_or("?".to_string(), ToString::to_string)
                    ));
                }
            }
            Some((kind, body)) if kind == "table" => s.push_str(&format!(
                "table {} {}",
                str_of(body, "family"),
                str_of(body, "name")
            )),
            _ => s.push_str(&serde_json::to_string(e).unwrap_or_default()),
        }
        spans.push((start..s.len(), exprs));
        s.push('\n');
    }
    (s, spans)
}

/// One rule expression in nft's words, as far as rvs knows them (else its JSON).
fn nft_words(e: &serde_json::Value) -> String {
    let json = || serde_json::to_string(e).unwrap_or_default();
    let Some((kind, body)) = e.as_object().and_then(|o| o.iter().next()) else {
        return json();
    };
    match kind.as_str() {
        "match" => {
            let op = match body.get("op").and_then(|o| o.as_str()) {
                None | Some("==") | Some("in") => String::new(),
                Some(op) => format!("{op} "),
            };
            format!(
                "{} {op}{}",
                body.get("left").map_or(String::new(), nft_value_words),
                body.get("right").map_or(String::new(), nft_value_words)
            )
        }
        "mangle" => format!(
            "{} set {}",
            body.get("key").map_or(String::new(), nft_value_words),
            body.get("value").map_or(String::new(), nft_value_words)
        ),
        "counter" | "accept" | "drop" | "return" | "continue" => kind.clone(),
        "jump" | "goto" => format!("{kind} {}", str_of(body, "target")),
        "xt" => format!("xt {} {}", str_of(body, "type"), str_of(body, "name")),
        _ => json(),
    }
}

/// A match's or statement's operand in nft's words.
fn nft_value_words(v: &serde_json::Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if v.is_number() {
        return v.to_string();
    }
    if let Some(a) = v.as_array() {
        return a.iter().map(nft_value_words).collect::<Vec<_>>().join(" ");
    }
    let Some((k, body)) = v.as_object().and_then(|o| o.iter().next()) else {
        return v.to_string();
    };
    match k.as_str() {
        "payload" => format!("{} {}", str_of(body, "protocol"), str_of(body, "field")),
        "meta" | "ct" => format!("{k} {}", str_of(body, "key")),
        "prefix" => format!(
            "{}/{}",
            str_of(body, "addr"),
            body.get("len").map_or(String::new(), ToString::to_string)
        ),
        "range" => body
            .as_array()
            .map(|r| r.iter().map(nft_value_words).collect::<Vec<_>>().join("-"))
            .unwrap_or_default(),
        "set" => format!(
            "{{ {} }}",
            body.as_array()
                .map(|r| r.iter().map(nft_value_words).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ),
        op if body.as_array().is_some_and(|a| a.len() == 2) => {
            let a = body.as_array().map(Vec::as_slice).unwrap_or_default();
            format!("{} {op} {}", nft_value_words(&a[0]), nft_value_words(&a[1]))
        }
        _ => v.to_string(),
    }
}

/// Read `nft -j list ruleset` output: the `meta mark set N` rules of the ip, ip6 and inet
/// chains hooked at prerouting and input. Diagnostics point into [`nft_listing`] of the
/// output (one line per table, chain, set and rule, in the output's order), under the name
/// `shown`. Rules of tables iptables-nft manages (`xt` expressions) are iptables-save's and
/// are left to it.
pub fn parse_nft_json(text: &str, shown: &str, dir: &Director<'_>) -> Ruleset {
    let mut out = Ruleset::default();
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(text);
    let elements = match parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("nftables"))
        .and_then(|v| v.as_array())
    {
        Some(a) => a.clone(),
        None => {
            let why = match parsed {
                Err(e) => format!("not JSON: {e}"),
                Ok(_) => "no `nftables` array".to_string(),
            };
            out.warnings.push(Diagnostic::new(
                text,
                shown,
                0..0,
                Severity::Warning,
                format!("cannot read the nftables ruleset ({why}); its MARK rules are not used"),
                None,
            ));
            return out;
        }
    };
    let (listing, lines) = nft_listing(&elements);
    // Base chains: (family, table, name) -> position (None: a hook packets to the
    // director do not pass before IPVS).
    let mut chains: Vec<((String, String, String), Option<Position>)> = Vec::new();
    for e in &elements {
        if let Some(c) = e.get("chain") {
            let key = (str_of(c, "family"), str_of(c, "table"), str_of(c, "name"));
            let hook = match c.get("hook").and_then(|h| h.as_str()) {
                Some("prerouting") => Some(Hook::Prerouting),
                Some("input") => Some(Hook::Input),
                _ => None,
            };
            let priority = c.get("prio").and_then(nft_priority);
            if c.get("hook").is_none() {
                continue; // a regular chain, reached by jumps
            }
            let pos = match (hook, priority) {
                (Some(hook), Some(priority)) => Some(Position { hook, priority }),
                _ => None,
            };
            chains.push((key, pos));
        }
    }
    for (idx, e) in elements.iter().enumerate() {
        let Some(r) = e.get("rule") else { continue };
        let family = str_of(r, "family");
        let families = match family.as_str() {
            "ip" => vec![Family::V4],
            "ip6" => vec![Family::V6],
            "inet" => Vec::new(),
            _ => continue, // arp, bridge, netdev: not IP packets to the director
        };
        let key = (family.clone(), str_of(r, "table"), str_of(r, "chain"));
        let Some(exprs) = r.get("expr").and_then(|x| x.as_array()) else {
            continue;
        };
        let Some(rule) = nft_rule(exprs, families) else {
            continue;
        };
        let (span, expr_spans) = lines.get(idx).cloned().unwrap_or((0..0, Vec::new()));
        let place = Place::new(&listing, shown, span.clone());
        let used = dir.marks.contains(&rule.mark);
        let whose = format!(
            "table {} {}, chain {}, handle {}",
            key.0,
            key.1,
            key.2,
            r.get("handle").map_or("?".to_string(), ToString::to_string)
        );
        let warn = |out: &mut Ruleset, at: Option<usize>, msg: String| {
            let span = at
                .and_then(|i| expr_spans.get(i).cloned())
                .unwrap_or_else(|| span.clone());
            out.warnings.push(Diagnostic::new(
                &listing,
                shown,
                span,
                Severity::Warning,
                msg,
                Some(SUPPORTED_NFT.to_string()),
            ));
        };
        let position = chains.iter().find(|(k, _)| *k == key).map(|(_, p)| *p);
        match (position, rule.result) {
            (Some(None), _) => {} // forward, output, postrouting: not on the way in
            (None, _) => {
                if used {
                    warn(
                        &mut out,
                        None,
                        format!(
                            "the rule in {whose} gives mark {}, but its chain is not hooked at \
                             prerouting or input (rvs follows no jumps): rule skipped",
                            rule.mark
                        ),
                    );
                }
            }
            (Some(Some(_)), Err((at, what))) => {
                if used {
                    warn(
                        &mut out,
                        Some(at),
                        format!(
                            "the rule in {whose} gives mark {}, but rvs cannot express \
                             {what}: rule skipped",
                            rule.mark
                        ),
                    );
                }
            }
            (Some(Some(position)), Ok(m)) => {
                let words = m
                    .iface
                    .as_ref()
                    .map(|i| {
                        format!(
                            "iifname \"{}{}\"",
                            i.name,
                            if i.wildcard { "*" } else { "" }
                        )
                    })
                    .unwrap_or_default();
                match expand(&m, rule.mark, dir, &words) {
                    Ok(rules) => out.markings.push(Marking {
                        position,
                        mark: rule.mark,
                        rules,
                        place,
                    }),
                    Err(why) => {
                        if used {
                            warn(
                                &mut out,
                                rule.iface_expr,
                                format!(
                                    "the rule in {whose} gives mark {}: {why}: rule skipped",
                                    rule.mark
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    out
}

fn str_of(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string()
}

/// A chain's priority: a number, or one of nft's standard names.
fn nft_priority(v: &serde_json::Value) -> Option<i32> {
    if let Some(n) = v.as_i64() {
        return i32::try_from(n).ok();
    }
    // nftables `src/rule.c` standard_priorities (ip, ip6, inet).
    match v.as_str()? {
        "raw" => Some(-300),
        "mangle" => Some(-150),
        "dstnat" => Some(-100),
        "filter" => Some(0),
        "security" => Some(50),
        "srcnat" => Some(100),
        _ => None,
    }
}

/// A `meta mark set N` rule of nftables: its mark and matches, or what rvs cannot express.
struct NftRule {
    mark: u32,
    /// The matches, or the first expression rvs cannot express (its index, in words).
    result: Result<Matches, (usize, String)>,
    /// The index of the interface match.
    iface_expr: Option<usize>,
}

/// Read one rule's expressions. None when it sets no packet mark (or belongs to
/// iptables-nft: an `xt` expression).
fn nft_rule(exprs: &[serde_json::Value], families: Vec<Family>) -> Option<NftRule> {
    let mut m = Matches {
        families,
        ..Matches::default()
    };
    let mut mark = None;
    let mut problem: Option<(usize, String)> = None;
    let mut iface_expr = None;
    for (i, e) in exprs.iter().enumerate() {
        let Some((kind, body)) = e.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let mut found: Option<String> = None;
        match kind.as_str() {
            "xt" => return None,
            "counter" | "log" | "accept" | "continue" => {}
            "mangle" => {
                let key = body.get("key");
                let is_meta_mark = key
                    .and_then(|k| k.get("meta"))
                    .and_then(|m| m.get("key"))
                    .and_then(|k| k.as_str())
                    == Some("mark");
                if is_meta_mark {
                    match body.get("value").and_then(|v| v.as_u64()) {
                        Some(v) => mark = u32::try_from(v).ok(),
                        None => {
                            // `meta mark set mark or 0x50`: a value computed from the packet.
                            found = Some(
                                "`meta mark set` of a computed value (rvs sets whole marks only)"
                                    .to_string(),
                            );
                            mark = nft_mark_operand(body.get("value"));
                        }
                    }
                }
                // `ct mark set`, header mangling: not the packet's mark.
            }
            "match" => {
                let had_iface = m.iface.is_some();
                nft_match(body, &mut m, &mut |w| {
                    found.get_or_insert(w);
                });
                if !had_iface && m.iface.is_some() {
                    iface_expr = Some(i);
                }
            }
            other => found = Some(format!("the `{other}` statement")),
        }
        if let Some(w) = found
            && problem.is_none()
        {
            problem = Some((i, w));
        }
    }
    let mark = mark?;
    Some(NftRule {
        mark,
        result: match problem {
            Some(p) => Err(p),
            None => Ok(m),
        },
        iface_expr,
    })
}

/// The constant of `mark or 0x50` / `mark and ... xor 0x50`, to judge whether the rule
/// concerns a service's mark.
fn nft_mark_operand(v: Option<&serde_json::Value>) -> Option<u32> {
    let o = v?.as_object()?;
    let (_, args) = o.iter().next()?;
    args.as_array()?
        .iter()
        .rev()
        .find_map(|a| {
            a.as_u64()
                .or_else(|| nft_mark_operand(Some(a)).map(u64::from))
        })
        .and_then(|n| u32::try_from(n).ok())
}

fn nft_match(body: &serde_json::Value, m: &mut Matches, note: &mut impl FnMut(String)) {
    let op = body.get("op").and_then(|o| o.as_str()).unwrap_or("==");
    let left = body.get("left");
    let right = body.get("right");
    let payload = left.and_then(|l| l.get("payload"));
    let meta = left
        .and_then(|l| l.get("meta"))
        .and_then(|x| x.get("key"))
        .and_then(|k| k.as_str());
    let what = match (payload, meta) {
        (Some(p), _) => format!("{} {}", str_of(p, "protocol"), str_of(p, "field")),
        (None, Some(k)) => format!("meta {k}"),
        (None, None) => left
            .and_then(|l| l.as_object())
            .and_then(|o| o.iter().next())
            .map_or("a match".to_string(), |(k, v)| match v.get("key") {
                Some(key) => format!("{k} {}", key.as_str().unwrap_or("")),
                None => k.clone(),
            }),
    };
    if op != "==" && op != "in" {
        note(format!("`{what} {op}` (only equality)"));
        return;
    }
    let Some(right) = right else {
        note(format!("`{what}`"));
        return;
    };
    let elems: Vec<&serde_json::Value> = match right.get("set").and_then(|s| s.as_array()) {
        Some(a) => a.iter().collect(),
        None => vec![right],
    };
    if elems
        .iter()
        .any(|e| e.as_str().is_some_and(|s| s.starts_with('@')))
    {
        note(format!("`{what} @set` (a named set)"));
        return;
    }
    let proto_of = |m: &mut Matches, p: Option<Protocol>, note: &mut dyn FnMut(String)| match (
        m.protocol, p,
    ) {
        (Some(a), Some(b)) if a != b => note(format!("`{what}` with another protocol")),
        (_, Some(p)) => m.protocol = Some(p),
        (_, None) => {}
    };
    match (
        payload.map(|p| (str_of(p, "protocol"), str_of(p, "field"))),
        meta,
    ) {
        (Some((proto, field)), _)
            if (proto == "ip" || proto == "ip6") && (field == "daddr" || field == "saddr") =>
        {
            let fam = if proto == "ip" {
                Family::V4
            } else {
                Family::V6
            };
            if !m.families.is_empty() && !m.families.contains(&fam) {
                note(format!("`{what}` in a table of the other family"));
                return;
            }
            m.families = vec![fam];
            for e in elems {
                let p = match (e.as_str(), e.get("prefix")) {
                    (Some(s), _) => parse_prefix(s),
                    (None, Some(p)) => p
                        .get("addr")
                        .and_then(|a| a.as_str())
                        .and_then(|a| a.parse::<IpAddr>().ok())
                        .zip(p.get("len").and_then(|l| l.as_u64()))
                        .and_then(|(addr, len)| {
                            let len = u8::try_from(len).ok()?;
                            (len <= Family::of(&addr).max_prefix()).then_some(Prefix { addr, len })
                        }),
                    _ => None,
                };
                match p {
                    Some(p) if Family::of(&p.addr) == fam => {
                        if field == "daddr" {
                            m.dst.push(p)
                        } else {
                            m.src.push(p)
                        }
                    }
                    _ => {
                        note(format!("`{what} {e}`"));
                        return;
                    }
                }
            }
        }
        (Some((proto, field)), _)
            if (proto == "ip" && field == "protocol") || (proto == "ip6" && field == "nexthdr") =>
        {
            match elems.as_slice() {
                [one] => match nft_protocol(one) {
                    Some(p) => proto_of(m, Some(p), note),
                    None => note(format!("`{what} {one}`")),
                },
                _ => note(format!("`{what}` with several protocols")),
            }
        }
        (Some((proto, field)), _)
            if field == "dport" && matches!(proto.as_str(), "tcp" | "udp" | "th") =>
        {
            let p = match proto.as_str() {
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                _ => None,
            };
            proto_of(m, p, note);
            for e in elems {
                let r = match (e.as_u64(), e.get("range").and_then(|r| r.as_array())) {
                    (Some(n), _) => u16::try_from(n).ok().map(|p| (p, p)),
                    (None, Some(r)) if r.len() == 2 => {
                        let lo = r[0].as_u64().and_then(|n| u16::try_from(n).ok());
                        let hi = r[1].as_u64().and_then(|n| u16::try_from(n).ok());
                        lo.zip(hi).filter(|(lo, hi)| lo <= hi)
                    }
                    _ => None,
                };
                match r {
                    Some(r) => m.ports.push(r),
                    None => {
                        note(format!("`{what} {e}`"));
                        return;
                    }
                }
            }
        }
        (None, Some("l4proto")) => match elems.as_slice() {
            [one] => match nft_protocol(one) {
                Some(p) => proto_of(m, Some(p), note),
                None => note(format!("`{what} {one}`")),
            },
            _ => note(format!("`{what}` with several protocols")),
        },
        (None, Some("iifname" | "iif")) => match elems.as_slice() {
            [one] if one.as_str().is_some() => {
                m.iface = Some(Iface::parse(one.as_str().unwrap_or_default(), '*'));
            }
            _ => note(format!("`{what}` with several interfaces")),
        },
        (None, Some("nfproto")) => {
            let fam = match elems.as_slice() {
                [one] => match one.as_str() {
                    Some("ipv4") => Some(Family::V4),
                    Some("ipv6") => Some(Family::V6),
                    _ => None,
                },
                _ => None,
            };
            match fam {
                Some(f) if m.families.is_empty() || m.families.contains(&f) => m.families = vec![f],
                _ => note(format!("`{what} {right}`")),
            }
        }
        _ => note(format!("`{what}`")),
    }
}

fn nft_protocol(v: &serde_json::Value) -> Option<Protocol> {
    match (v.as_str(), v.as_u64()) {
        (Some(s), _) => protocol_named(s).flatten(),
        (None, Some(n)) => u8::try_from(n).ok().and_then(Protocol::from_number),
        _ => None,
    }
}

/// The classifier rules the rulesets give, first match first: every MARK rule from the
/// first one giving a service's mark on (earlier ones are always overridden or concern no
/// service), ordered as netfilter runs them (hook, chain priority, then position; rulesets
/// in the order given for equal priorities) and then reversed, because the last MARK run
/// decides the packet's mark. A rule setting mark 0 after such a rule cannot be expressed
/// (the classifier gives marks, it cannot take one away) and is warned and skipped.
pub fn compile(rulesets: &[&Ruleset], marks: &[u32]) -> (Vec<FwmarkRule>, Vec<Diagnostic>) {
    let mut all: Vec<&Marking> = rulesets.iter().flat_map(|r| r.markings.iter()).collect();
    all.sort_by_key(|m| m.position);
    let mut warnings = Vec::new();
    let Some(first) = all.iter().position(|m| marks.contains(&m.mark)) else {
        return (Vec::new(), warnings);
    };
    let mut kept: Vec<&Marking> = Vec::new();
    for m in &all[first..] {
        if m.mark == 0 {
            warnings.push(m.place.warning(
                "this rule clears the mark after rules that give a service's mark; rvs cannot \
                 take a mark away: rule skipped",
            ));
        } else {
            kept.push(m);
        }
    }
    let rules = kept
        .iter()
        .rev()
        .flat_map(|m| m.rules.iter().copied())
        .collect();
    (rules, warnings)
}

/// A warning at each fwmark service (its mark and place) whose family gets its mark from no
/// classifier rule: no packet reaches it. `sources` names what was read (e.g. `iptables
/// or nftables`), for the message.
pub fn unmarked(
    services: &[(u32, Family, Place)],
    rules: &[FwmarkRule],
    sources: &str,
) -> Vec<Diagnostic> {
    services
        .iter()
        .filter(|(mark, family, _)| {
            !rules
                .iter()
                .any(|r| r.mark == *mark && Family::of(&r.dst.addr) == *family)
        })
        .map(|(mark, _, place)| {
            place.diagnostic(
                Severity::Warning,
                format!(
                    "no packet gets firewall mark {mark}, so none reaches this service: no \
                     classifier rule in this file and no {sources} MARK rule for it on this \
                     host"
                ),
                Some(format!(
                    "`iptables -t mangle -A PREROUTING -p tcp -d VIP/32 --dport PORT -j MARK \
                     --set-mark {mark}` on the director, or rvs's own classifier rules \
                     (lvs.cf `fwmark_ports`, TOML `[[fwmark_rule]]`)"
                )),
            )
        })
        .collect()
}

/// Where a firewall mark is written in a configuration file that carries no positions for
/// it (ipvsadm rules, TOML): the first line whose words give `fwmark`, `-f` or
/// `--fwmark-service` this mark; else the file's first line.
pub fn mark_place(text: &str, path: &str, mark: u32) -> Place {
    for span in line_spans(text) {
        let line = &text[span.clone()];
        let toks: Vec<(usize, &str)> = line
            .match_indices(|c: char| !c.is_whitespace() && c != '=')
            .fold(Vec::new(), |mut acc: Vec<(usize, &str)>, (i, _)| {
                if let Some(last) = acc.last()
                    && last.0 + last.1.len() == i
                {
                    let start = last.0;
                    acc.pop();
                    acc.push((start, &line[start..=i]));
                } else {
                    acc.push((i, &line[i..=i]));
                }
                acc
            });
        for pair in toks.windows(2) {
            let (key, (at, v)) = (pair[0].1, pair[1]);
            if matches!(key, "fwmark" | "-f" | "--fwmark-service")
                && parse_u32(v.trim_matches('"')) == Some(mark)
            {
                let start = span.start + pair[0].0;
                return Place::new(text, path, start..span.start + at + v.len());
            }
        }
    }
    Place::new(text, path, 0..0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_take_lengths_and_contiguous_masks() {
        let p = |s| parse_prefix(s).map(|p| (p.addr.to_string(), p.len));
        assert_eq!(p("10.1.0.100"), Some(("10.1.0.100".into(), 32)));
        assert_eq!(p("10.1.0.0/24"), Some(("10.1.0.0".into(), 24)));
        assert_eq!(p("10.1.0.0/255.255.0.0"), Some(("10.1.0.0".into(), 16)));
        assert_eq!(p("10.1.0.0/255.0.255.0"), None);
        assert_eq!(p("2001:db8::/64"), Some(("2001:db8::".into(), 64)));
        assert_eq!(p("10.1.0.0/33"), None);
    }

    #[test]
    fn port_ranges_as_iptables_writes_them() {
        assert_eq!(parse_port_range("80"), Some((80, 80)));
        assert_eq!(parse_port_range("10000:20000"), Some((10000, 20000)));
        assert_eq!(parse_port_range(":1023"), Some((0, 1023)));
        assert_eq!(parse_port_range("1024:"), Some((1024, 65535)));
        assert_eq!(parse_port_range("20:10"), None);
        assert_eq!(parse_port_range("http"), None);
    }

    #[test]
    fn quoted_words_keep_their_spaces() {
        let w = words(
            r#"-A PREROUTING -m comment --comment "web \"80\" rule" -j MARK"#,
            0,
        );
        let t: Vec<&str> = w.iter().map(|w| w.text.as_ref()).collect();
        assert_eq!(
            t,
            [
                "-A",
                "PREROUTING",
                "-m",
                "comment",
                "--comment",
                "web \"80\" rule",
                "-j",
                "MARK"
            ]
        );
    }

    #[test]
    fn mark_place_finds_the_mark_in_each_format() {
        let rules = "-A -t 10.0.0.1:80 -s rr\n-A -f 80 -s rr -p 300\n";
        let p = mark_place(rules, "r.rules", 80);
        assert_eq!((p.line, p.column), (2, 4));
        let toml = "[[service]]\nfwmark = 80\n";
        assert_eq!(mark_place(toml, "x.toml", 80).line, 2);
        assert_eq!(mark_place(toml, "x.toml", 81).line, 1);
    }
}
