//! The part of popt (the option parser ipvsadm 1.31 is built with) that decides which
//! command lines ipvsadm accepts: short clusters (`-ln`, `-At 1.2.3.4:80`, `-w5`), long
//! options with `=` or a separate argument, `-p`'s optional argument (taken from the next
//! word unless it starts with `-`), `--` ending options, and non-option words kept as
//! leftovers. No abbreviations of long names and no single-dash long names, as in popt.

/// How an option takes its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// `POPT_ARG_NONE`.
    None,
    /// `POPT_ARG_STRING`.
    Required,
    /// `POPT_ARG_STRING | POPT_ARGFLAG_OPTIONAL`.
    Optional,
}

/// One row of ipvsadm's `options_table[]`.
pub(crate) struct OptDef {
    pub(crate) long: &'static str,
    pub(crate) short: Option<char>,
    pub(crate) arg: ArgKind,
    pub(crate) tag: Tag,
}

/// The value popt returns for an option (ipvsadm's `'A'`, `TAG_SET`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub(crate) enum Tag {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masq,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    Syncid,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
    /// rvs extension: FullNAT forwarding.
    FullNat,
    /// rvs extension: the FullNAT local address pool command.
    LocalPool,
    /// DPVS's `-j` / `--synproxy enable|disable`.
    SynProxy,
}

macro_rules! opt {
    ($long:expr, $short:expr, $arg:ident, $tag:ident) => {
        OptDef {
            long: $long,
            short: $short,
            arg: ArgKind::$arg,
            tag: Tag::$tag,
        }
    };
}

/// ipvsadm 1.31 `parse_options()` `options_table[]`, in its order (popt finds the first
/// match, so the second `list` entry is reachable only as `-l`), plus rvs's two
/// extensions and DPVS's `--synproxy` at the end.
pub(crate) static OPTIONS: &[OptDef] = &[
    opt!("add-service", Some('A'), None, AddService),
    opt!("edit-service", Some('E'), None, EditService),
    opt!("delete-service", Some('D'), None, DeleteService),
    opt!("clear", Some('C'), None, Clear),
    opt!("list", Some('L'), None, List),
    opt!("list", Some('l'), None, List),
    opt!("zero", Some('Z'), None, Zero),
    opt!("add-server", Some('a'), None, AddServer),
    opt!("edit-server", Some('e'), None, EditServer),
    opt!("delete-server", Some('d'), None, DeleteServer),
    opt!("set", None, None, Set),
    opt!("help", Some('h'), None, Help),
    opt!("version", Some('v'), None, Version),
    opt!("restore", Some('R'), None, Restore),
    opt!("save", Some('S'), None, Save),
    opt!("start-daemon", None, Required, StartDaemon),
    opt!("stop-daemon", None, Required, StopDaemon),
    opt!("tcp-service", Some('t'), Required, Tcp),
    opt!("udp-service", Some('u'), Required, Udp),
    opt!("sctp-service", None, Required, Sctp),
    opt!("fwmark-service", Some('f'), Required, Fwmark),
    opt!("scheduler", Some('s'), Required, Scheduler),
    opt!("persistent", Some('p'), Optional, Persistent),
    opt!("netmask", Some('M'), Required, Netmask),
    opt!("real-server", Some('r'), Required, RealServer),
    opt!("masquerading", Some('m'), None, Masq),
    opt!("ipip", Some('i'), None, Ipip),
    opt!("gatewaying", Some('g'), None, Gatewaying),
    opt!("weight", Some('w'), Required, Weight),
    opt!("u-threshold", Some('x'), Required, UThreshold),
    opt!("l-threshold", Some('y'), Required, LThreshold),
    opt!("numeric", Some('n'), None, Numeric),
    opt!("connection", Some('c'), None, Connection),
    opt!("mcast-interface", None, Required, McastInterface),
    opt!("syncid", None, Required, Syncid),
    opt!("timeout", None, None, Timeout),
    opt!("daemon", None, None, Daemon),
    opt!("stats", None, None, Stats),
    opt!("rate", None, None, Rate),
    opt!("thresholds", None, None, Thresholds),
    opt!("persistent-conn", None, None, PersistentConn),
    opt!("nosort", None, None, NoSort),
    opt!("sort", None, None, Sort),
    opt!("exact", Some('X'), None, Exact),
    opt!("ipv6", Some('6'), None, Ipv6),
    opt!("ops", Some('o'), None, Ops),
    opt!("pe", None, Required, Pe),
    opt!("sched-flags", Some('b'), Required, SchedFlags),
    opt!("mcast-group", None, Required, McastGroup),
    opt!("mcast-port", None, Required, McastPort),
    opt!("mcast-ttl", None, Required, McastTtl),
    opt!("sync-maxlen", None, Required, SyncMaxlen),
    opt!("tun-info", None, None, TunInfo),
    opt!("tun-type", None, Required, TunType),
    opt!("tun-port", None, Required, TunPort),
    opt!("tun-nocsum", None, None, TunNoCsum),
    opt!("tun-csum", None, None, TunCsum),
    opt!("tun-remcsum", None, None, TunRemCsum),
    opt!("fullnat", None, None, FullNat),
    opt!("local-pool", None, None, LocalPool),
    // DPVS tools/ipvsadm/ipvsadm.c: `{ "synproxy", 'j', POPT_ARG_STRING, &optarg, 'j' }`.
    opt!("synproxy", Some('j'), Required, SynProxy),
];

/// popt's error codes ipvsadm can meet, with `poptStrerror()`'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoptError {
    /// `POPT_ERROR_NOARG`.
    NoArg,
    /// `POPT_ERROR_BADOPT`.
    BadOpt,
    /// `POPT_ERROR_UNWANTEDARG`.
    UnwantedArg,
}

impl PoptError {
    pub(crate) fn text(self) -> &'static str {
        match self {
            PoptError::NoArg => "missing argument",
            PoptError::BadOpt => "unknown option",
            PoptError::UnwantedArg => "option does not take an argument",
        }
    }
}

/// One option popt returned: its tag, argument and the index of the word it came from.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) tag: Tag,
    pub(crate) arg: Option<String>,
    pub(crate) word: usize,
    /// The word holding the argument (`word` itself when attached or absent).
    pub(crate) arg_word: usize,
}

/// A popt context over `argv` (`argv[0]` is the program name).
pub(crate) struct Popt<'a> {
    argv: &'a [String],
    next: usize,
    /// Within a short cluster: (word index, byte offset of the next option character).
    cluster: Option<(usize, usize)>,
    rest_leftover: bool,
    /// Non-option words, with their indices, in order (`poptGetArg()`).
    pub(crate) leftovers: Vec<(String, usize)>,
}

impl<'a> Popt<'a> {
    pub(crate) fn new(argv: &'a [String]) -> Self {
        Popt {
            argv,
            next: 1,
            cluster: None,
            rest_leftover: false,
            leftovers: Vec::new(),
        }
    }

    /// `poptGetNextOpt()`: `Ok(None)` at the end, `Err((error, word index))` on an error
    /// (`poptBadOption()` is then the word at that index).
    pub(crate) fn next_opt(&mut self) -> Result<Option<Got>, (PoptError, usize)> {
        loop {
            if let Some((w, pos)) = self.cluster.take() {
                let word = &self.argv[w];
                let c = word[pos..].chars().next().unwrap_or('\0');
                let after = pos + c.len_utf8();
                let Some(def) = OPTIONS.iter().find(|o| o.short == Some(c)) else {
                    return Err((PoptError::BadOpt, w));
                };
                let mut rest = &word[after..];
                if def.arg == ArgKind::None {
                    let skip = usize::from(rest.starts_with('='));
                    rest = &rest[skip..];
                    if !rest.is_empty() {
                        self.cluster = Some((w, word.len() - rest.len()));
                    }
                    return Ok(Some(Got {
                        tag: def.tag,
                        arg: None,
                        word: w,
                        arg_word: w,
                    }));
                }
                let inline = rest.strip_prefix('=').unwrap_or(rest);
                let before = self.next;
                let arg = if !inline.is_empty() {
                    Some(inline.to_string())
                } else {
                    self.take_arg(def.arg, w)?
                };
                let arg_word = if self.next > before { before } else { w };
                return Ok(Some(Got {
                    tag: def.tag,
                    arg,
                    word: w,
                    arg_word,
                }));
            }
            if self.next >= self.argv.len() {
                return Ok(None);
            }
            let w = self.next;
            self.next += 1;
            let word = self.argv[w].as_str();
            if self.rest_leftover || !word.starts_with('-') || word == "-" {
                self.leftovers.push((word.to_string(), w));
                continue;
            }
            if word == "--" {
                self.rest_leftover = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, val) = match long.find('=') {
                    Some(i) => (&long[..i], Some(&long[i + 1..])),
                    None => (long, None),
                };
                let Some(def) = OPTIONS.iter().find(|o| o.long == name) else {
                    return Err((PoptError::BadOpt, w));
                };
                let before = self.next;
                let arg = match (def.arg, val) {
                    (ArgKind::None, Some(_)) => return Err((PoptError::UnwantedArg, w)),
                    (ArgKind::None, None) => None,
                    (_, Some(v)) => Some(v.to_string()),
                    (k, None) => self.take_arg(k, w)?,
                };
                let arg_word = if self.next > before { before } else { w };
                return Ok(Some(Got {
                    tag: def.tag,
                    arg,
                    word: w,
                    arg_word,
                }));
            }
            self.cluster = Some((w, 1));
        }
    }

    fn take_arg(&mut self, kind: ArgKind, w: usize) -> Result<Option<String>, (PoptError, usize)> {
        if self.next >= self.argv.len() {
            return match kind {
                ArgKind::Optional => Ok(None),
                _ => Err((PoptError::NoArg, w)),
            };
        }
        let cand = &self.argv[self.next];
        if kind == ArgKind::Optional && cand.starts_with('-') {
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(cand.clone()))
    }
}
