//! `rvsadm`: ipvsadm's command set against a running daemon, over its control socket.
//!
//! # Wire format
//! One request per connection, everything length-prefixed so that arguments may hold any
//! byte but NUL-free UTF-8 is all `parse_command` takes (the client converts lossily):
//!
//! ```text
//! ipvsadm ARGC STDIN_LEN\n          request line (ARGC ≥ 1: argv[0] is the program name)
//! LEN\n BYTES\n                     ARGC times: one argument, LEN bytes, then a newline
//! STDIN                             STDIN_LEN bytes: the rules text of -R, else nothing
//! ```
//!
//! answered with
//!
//! ```text
//! ipvsadm-reply CODE OUT_LEN ERR_LEN\n
//! OUT ERR                           what ipvsadm would print on stdout, then on stderr
//! ```
//!
//! where CODE is the exit status ipvsadm would give. Limits: 4096 arguments of at most
//! 64 KiB, 64 MiB of rules. A daemon that does not know the request answers
//! `error: unknown request ...`.
//!
//! # What runs where
//! The control thread parses the command ([`prepare`]: `parse_command`, and for `-R`
//! `parse_rules`) and works out what it asks from the operator's base configuration
//! ([`Prepared::plan`]); in the daemon the data-plane worker only installs the result
//! (`daemon/changes.rs`) or runs what needs the engine itself ([`Prepared::run_on_engine`]:
//! `-Z`). [`Prepared::run`] does all of it at once on an engine (tests, tools):
//! - list commands → [`crate::listing::list`];
//! - `-S` → `save` of the running configuration;
//! - `-A -E -D -C -a -e -d --set --local-pool` → `apply` to a copy of the base
//!   configuration, then installed atomically (connections kept). Refusals carry
//!   ipvsadm's kernel-error text ("No such service", ...) and exit status 255, as
//!   ipvsadm's `main()` returns -1;
//! - `-R` → each line runs in turn, as ipvsadm's `restore_table()` runs it through
//!   `process_options()`: a line the kernel refuses prints its message ("Service already
//!   exists", ...) and the next line runs; a line ipvsadm cannot parse stops the restore
//!   with its usage message and exit status 2, the lines before it staying applied; the
//!   exit status is the last line's (255 when the kernel refused it). The lines add to the
//!   running table (ipvsadm's init scripts run `-C` first, or the rules file starts with
//!   `-C`); the result is installed once, at the end;
//! - `--start-daemon`, `--stop-daemon`, `-L --daemon` → the daemon's connection-sync
//!   daemons ([`crate::syncd::SyncDaemons`], see [`Prepared::sync_request`]), with
//!   ipvsadm's "Daemon has already run" / "No daemon is running" (exit status 255).
//!
//! A reload of the daemon's configuration file (SIGHUP, `rvs reload`) replaces what
//! rvsadm changed, as keepalived does with ipvsadm's changes.
//!
//! # Names
//! The daemon reads numbers only. `rvsadm` resolves host and service names where
//! ipvsadm takes them before it sends the request
//! ([`rvs_config::ipvsadm::numeric_args`], and [`rvs_config::ipvsadm::numeric_rules`]
//! for `-R`'s rules), and prints names into the daemon's numeric listings and saves
//! where ipvsadm prints them without `-n` ([`name_reply`]), with the client's
//! resolver ([`crate::names::SystemNames`]), as ipvsadm resolves on the host it runs on.

use crate::desired::Desired;
use crate::listing;
use rvs_config::ipvsadm::{self, Command};
use rvs_core::director::Director;
use rvs_core::time::Instant;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const MAX_ARGS: usize = 4096;
const MAX_ARG_LEN: usize = 64 << 10;
const MAX_STDIN: usize = 64 << 20;

/// What ipvsadm would print and return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Reply {
    pub(crate) fn ok(stdout: String) -> Reply {
        Reply {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }

    pub(crate) fn fail(code: i32, message: &str) -> Reply {
        let mut stderr = message.to_string();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Reply {
            code,
            stdout: String::new(),
            stderr,
        }
    }

    /// The reply on the wire.
    pub fn encode(&self) -> String {
        format!(
            "ipvsadm-reply {} {} {}\n{}{}",
            self.code,
            self.stdout.len(),
            self.stderr.len(),
            self.stdout,
            self.stderr
        )
    }

    /// Read a reply from the wire; an `error: ...` answer (a daemon that refused the
    /// request itself) becomes an error.
    pub fn decode(text: &str) -> io::Result<Reply> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed reply");
        if let Some(e) = text.strip_prefix("error: ") {
            return Err(io::Error::other(e.trim_end().to_string()));
        }
        let (head, body) = text.split_once('\n').ok_or_else(bad)?;
        let mut w = head.split(' ');
        if w.next() != Some("ipvsadm-reply") {
            return Err(bad());
        }
        let mut num = || w.next().and_then(|n| n.parse::<i64>().ok()).ok_or_else(bad);
        let (code, out, err) = (num()?, num()?, num()?);
        let (out, err) = (usize::try_from(out).map_err(|_| bad())?, err as usize);
        if body.len() != out + err || !body.is_char_boundary(out) {
            return Err(bad());
        }
        Ok(Reply {
            code: i32::try_from(code).map_err(|_| bad())?,
            stdout: body[..out].to_string(),
            stderr: body[out..].to_string(),
        })
    }
}

/// The daemon's numeric answer to `command` as ipvsadm prints it: without `-n`, `-L`
/// (the table, one service, `-c`) and `-S` name hosts and services with `names`
/// ([`listing::name_listing`], [`ipvsadm::name_save`]). Failures and every other
/// command are left as they are.
pub fn name_reply(command: &Command, reply: &mut Reply, names: &dyn ipvsadm::Names) {
    if reply.code != 0 {
        return;
    }
    match command {
        Command::List(opts) => reply.stdout = listing::name_listing(&reply.stdout, opts, names),
        Command::Save { numeric: false } => reply.stdout = ipvsadm::name_save(&reply.stdout, names),
        _ => {}
    }
}

/// The request on the wire.
pub fn encode_request(args: &[String], stdin: &str) -> Vec<u8> {
    let mut b = format!("ipvsadm {} {}\n", args.len(), stdin.len()).into_bytes();
    for a in args {
        b.extend_from_slice(format!("{}\n", a.len()).as_bytes());
        b.extend_from_slice(a.as_bytes());
        b.push(b'\n');
    }
    b.extend_from_slice(stdin.as_bytes());
    b
}

/// Read the rest of a request whose first line (`ipvsadm ARGC STDIN_LEN`) was `line`.
pub fn read_request(line: &str, r: &mut impl BufRead) -> Result<(Vec<String>, String), String> {
    let mut w = line.split_whitespace();
    if w.next() != Some("ipvsadm") {
        return Err("not an ipvsadm request".into());
    }
    let argc: usize = w
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|&n| (1..=MAX_ARGS).contains(&n))
        .ok_or("ipvsadm request: bad argument count")?;
    let stdin_len: usize = w
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n <= MAX_STDIN)
        .ok_or("ipvsadm request: bad stdin length")?;
    let io = |e: io::Error| format!("ipvsadm request: {e}");
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| "ipvsadm request: not UTF-8");
    let mut args = Vec::with_capacity(argc);
    for _ in 0..argc {
        let mut n = String::new();
        r.read_line(&mut n).map_err(io)?;
        let len: usize = n
            .trim_end()
            .parse()
            .ok()
            .filter(|&l| l <= MAX_ARG_LEN)
            .ok_or("ipvsadm request: bad argument length")?;
        let mut b = vec![0u8; len + 1];
        r.read_exact(&mut b).map_err(io)?;
        if b.pop() != Some(b'\n') {
            return Err("ipvsadm request: argument not followed by a newline".into());
        }
        args.push(text(b)?);
    }
    let mut b = vec![0u8; stdin_len];
    r.read_exact(&mut b).map_err(io)?;
    Ok((args, text(b)?))
}

/// Send a command line (`args[0]` = program name) and the `-R` rules text to the daemon
/// at `control`; its answer.
pub fn request(control: &Path, args: &[String], stdin: &str) -> io::Result<Reply> {
    let mut s = UnixStream::connect(control)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(&encode_request(args, stdin))?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Reply::decode(&text)
}

/// ipvsadm 1.31's `version()` line, exactly: it names `ipvsadm` whatever argv[0] is
/// (ipvsadm.c `version()` prints the literal "ipvsadm " IPVSADM_VERSION), so scripts that
/// parse `ipvsadm -v` read the release whose command line and output rvsadm reproduces.
pub const IPVSADM_VERSION_LINE: &str =
    "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n";

/// `rvsadm -v`/`--version`: ipvsadm's line first (unchanged, for scripts), then rvs's own
/// version on a second line.
pub fn version(program: &str) -> String {
    let _ = program;
    format!(
        "{IPVSADM_VERSION_LINE}rvs {} (rvsadm: ipvsadm's command line against the rvs daemon)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// ipvsadm 1.31's `usage_exit()` text for `program`: `version()`'s line, then the usage.
pub fn usage(program: &str) -> String {
    let p = program;
    let mut s = IPVSADM_VERSION_LINE.to_owned();
    s += &format!(
        "Usage:\n\
         \x20 {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n\
         \x20 {p} -D virtual-service\n\
         \x20 {p} -C\n\
         \x20 {p} -R\n\
         \x20 {p} -S [-n]\n\
         \x20 {p} -a|e virtual-service -r server-address [options]\n\
         \x20 {p} -d virtual-service -r server-address\n\
         \x20 {p} -L|l [virtual-service] [options]\n\
         \x20 {p} -Z [virtual-service]\n\
         \x20 {p} --set tcp tcpfin udp\n\
         \x20 {p} --start-daemon {{master|backup}} [daemon-options]\n\
         \x20 {p} --stop-daemon {{master|backup}}\n\
         \x20 {p} -h\n\n"
    );
    s += "Commands:\n\
          Either long or short options are allowed.\n\
          \x20 --add-service     -A        add virtual service with options\n\
          \x20 --edit-service    -E        edit virtual service with options\n\
          \x20 --delete-service  -D        delete virtual service\n\
          \x20 --clear           -C        clear the whole table\n\
          \x20 --restore         -R        restore rules from stdin\n\
          \x20 --save            -S        save rules to stdout\n\
          \x20 --add-server      -a        add real server with options\n\
          \x20 --edit-server     -e        edit real server with options\n\
          \x20 --delete-server   -d        delete real server\n\
          \x20 --list            -L|-l     list the table\n\
          \x20 --zero            -Z        zero counters in a service or all services\n\
          \x20 --set tcp tcpfin udp        set connection timeout values\n\
          \x20 --start-daemon              start connection sync daemon\n\
          \x20 --stop-daemon               stop connection sync daemon\n\
          \x20 --help            -h        display this help message\n\n";
    s += "virtual-service:\n\
          \x20 --tcp-service|-t  service-address   service-address is host[:port]\n\
          \x20 --udp-service|-u  service-address   service-address is host[:port]\n\
          \x20 --sctp-service    service-address   service-address is host[:port]\n\
          \x20 --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n\n";
    s += "Options:\n\
          \x20 --ipv6         -6                   fwmark entry uses IPv6\n\
          \x20 --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n\
          \x20                                     the default scheduler is wlc.\n\
          \x20 --pe            engine              alternate persistence engine may be sip,\n\
          \x20                                     not set by default.\n\
          \x20 --persistent   -p [timeout]         persistent service\n\
          \x20 --netmask      -M netmask           persistent granularity mask\n\
          \x20 --real-server  -r server-address    server-address is host (and port)\n\
          \x20 --gatewaying   -g                   gatewaying (direct routing) (default)\n\
          \x20 --ipip         -i                   ipip encapsulation (tunneling)\n\
          \x20 --masquerading -m                   masquerading (NAT)\n\
          \x20 --tun-type      type                one of ipip|gue|gre,\n\
          \x20                                     the default tunnel type is ipip.\n\
          \x20 --tun-port      port                tunnel destination port\n\
          \x20 --tun-nocsum                        tunnel encapsulation without checksum\n\
          \x20 --tun-csum                          tunnel encapsulation with checksum\n\
          \x20 --tun-remcsum                       tunnel encapsulation with remote checksum\n\
          \x20 --weight       -w weight            capacity of real server\n\
          \x20 --u-threshold  -x uthreshold        upper threshold of connections\n\
          \x20 --l-threshold  -y lthreshold        lower threshold of connections\n\
          \x20 --connection   -c                   output of current IPVS connections\n\
          \x20 --timeout                           output of timeout (tcp tcpfin udp)\n\
          \x20 --daemon                            output of daemon information\n\
          \x20 --stats                             output of statistics information\n\
          \x20 --rate                              output of rate information\n\
          \x20 --exact                             expand numbers (display exact values)\n\
          \x20 --thresholds                        output of thresholds information\n\
          \x20 --persistent-conn                   output of persistent connection info\n\
          \x20 --tun-info                          output of tunnel information\n\
          \x20 --nosort                            disable sorting output of service/server entries\n\
          \x20 --sort                              does nothing, for backwards compatibility\n\
          \x20 --ops          -o                   one-packet scheduling\n\
          \x20 --numeric      -n                   numeric output of addresses and ports\n\
          \x20 --sched-flags  -b flags             scheduler flags (comma-separated)\n\n";
    s += "Daemon Options:\n\
          \x20 --syncid sid                        syncid for connection sync (default=255)\n\
          \x20 --sync-maxlen length                Max sync message length (default=1472)\n\
          \x20 --mcast-interface interface         multicast interface for connection sync\n\
          \x20 --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n\
          \x20 --mcast-port port                   UDP port (default=8848)\n\
          \x20 --mcast-ttl ttl                     Multicast TTL (default=1)\n";
    s
}

/// A parsed command, ready for the worker.
#[derive(Debug)]
pub struct Prepared {
    program: String,
    command: Command,
    /// `-R`: each line of the rules, parsed.
    restore: Vec<RestoreLine>,
}

/// One line of `-R` input.
#[derive(Debug)]
enum RestoreLine {
    /// A command to run.
    Run(Command),
    /// A line ipvsadm cannot parse: `fail()` prints the message and exits, so the restore
    /// stops here.
    Stop(ipvsadm::UsageError),
}

/// Parse a request's command line (and `-R`'s rules, a line at a time until the first that
/// does not parse): what the control thread does. Errors are complete replies.
pub fn prepare(args: &[String], stdin: &str) -> Result<Prepared, Reply> {
    let program = args.first().cloned().unwrap_or_else(|| "rvsadm".into());
    let command = ipvsadm::parse_command(args).map_err(|e| Reply::fail(e.exit_code, &e.message))?;
    let mut restore = Vec::new();
    if command == Command::Restore {
        for words in ipvsadm::restore_lines(stdin) {
            let mut line = Vec::with_capacity(words.len() + 1);
            line.push(program.clone());
            line.extend(words);
            match ipvsadm::parse_command(&line) {
                Ok(c) => restore.push(RestoreLine::Run(c)),
                Err(e) => {
                    restore.push(RestoreLine::Stop(e));
                    break;
                }
            }
        }
    }
    Ok(Prepared {
        program,
        command,
        restore,
    })
}

/// ipvsadm's `tryhelp_exit()` text.
fn try_help(program: &str) -> String {
    format!("Try `{program} -h' or '{program} --help' for more information.\n")
}

/// Make `next` the base configuration and install its effective form in the engine, or say
/// why not (exit status 255).
fn install(
    d: &mut Director,
    desired: &mut Desired,
    next: rvs_core::model::Config,
    now: Instant,
    check: &mut Check<'_>,
) -> Reply {
    // The daemon's refusals (a VIP it cannot own) come before anything is installed.
    if let Err(why) = check(&next) {
        return Reply::fail(255, &why);
    }
    match desired.install(d, next, now) {
        Ok(_) => Reply::ok(String::new()),
        Err(errs) => {
            let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            Reply::fail(255, &msgs.join("\n"))
        }
    }
}

/// A check of a changed configuration before it is installed: `Err` refuses the change
/// with that message (exit status 255).
pub type Check<'a> = dyn FnMut(&rvs_core::model::Config) -> Result<(), String> + 'a;

/// The addresses of the virtual services `next` has that `before` did not (rvsadm added
/// them) and the director does not own yet, with the port each is owned on: an address on
/// the link of an attached interface can be owned at once; one on no attached link, or any
/// new one while failover decides ownership (`all` false), cannot be, and the change is
/// refused with the reason.
pub fn addresses_to_own(
    net: &rvs_core::director::NetConfig,
    all: bool,
    before: &rvs_core::model::Config,
    next: &rvs_core::model::Config,
) -> Result<Vec<rvs_core::director::OwnedAddr>, String> {
    let addr_of = |k: &rvs_core::model::ServiceKey| match *k {
        rvs_core::model::ServiceKey::Addr { addr, .. } => Some(addr),
        rvs_core::model::ServiceKey::Fwmark { .. } => None,
    };
    let mut out: Vec<rvs_core::director::OwnedAddr> = Vec::new();
    for svc in &next.services {
        let Some(addr) = addr_of(&svc.key) else {
            continue;
        };
        if net.owned.iter().any(|o| o.addr == addr)
            || out.iter().any(|o| o.addr == addr)
            || before
                .services
                .iter()
                .any(|b| addr_of(&b.key) == Some(addr))
        {
            continue;
        }
        if !all {
            return Err(format!(
                "{addr} is not an address failover moves: with VRRP or pulse running, a \
                 virtual service's address must be in the configuration file (a \
                 vrrp_instance's virtual_ipaddress, an lvs.cf virtual's address) so that \
                 one director owns it; add it there and reload"
            ));
        }
        let port = net
            .ports
            .iter()
            .find(|p| p.addrs.iter().any(|pf| pf.contains(addr)));
        let Some(port) = port else {
            let links: Vec<String> = net
                .ports
                .iter()
                .flat_map(|p| p.addrs.iter().map(|a| format!("{}/{}", a.addr, a.len)))
                .collect();
            return Err(format!(
                "{addr} is on no link the director is attached to ({}): it cannot answer \
                 ARP or neighbour solicitations for it; add the address with its device to \
                 the configuration file (lvs.cf `address = IP DEV`, keepalived \
                 `virtual_ipaddress`) and reload",
                links.join(", ")
            ));
        };
        out.push(rvs_core::director::OwnedAddr {
            addr,
            port: port.id,
            mac: None,
        });
    }
    Ok(out)
}

/// A request for the connection-sync daemons, which the engine alone cannot answer.
pub enum SyncRequest<'a> {
    /// `--start-daemon master|backup [options]`.
    Start(&'a rvs_config::ipvsadm::DaemonOptions),
    /// `--stop-daemon master|backup`.
    Stop(rvs_config::ipvsadm::DaemonState),
    /// `-L --daemon`.
    List,
}

impl Prepared {
    /// The listing this command asks for, if it is `-L` (`-l`) other than `-L --daemon`:
    /// the control thread formats it from a view of the engine.
    pub fn list_options(&self) -> Option<&rvs_config::ipvsadm::ListOptions> {
        match &self.command {
            Command::List(o) if o.what != rvs_config::ipvsadm::ListWhat::Daemon => Some(o),
            _ => None,
        }
    }

    /// The sync-daemon request this command is, if it is one.
    pub fn sync_request(&self) -> Option<SyncRequest<'_>> {
        match &self.command {
            Command::StartDaemon(o) => Some(SyncRequest::Start(o)),
            Command::StopDaemon { state, .. } => Some(SyncRequest::Stop(*state)),
            Command::List(o) if o.what == rvs_config::ipvsadm::ListWhat::Daemon => {
                Some(SyncRequest::List)
            }
            _ => None,
        }
    }

    /// The service `-Z` zeroes (None inside: every service), if the command is `-Z`.
    pub fn zero_request(&self) -> Option<Option<&rvs_core::model::ServiceKey>> {
        match &self.command {
            Command::Zero(key) => Some(key.as_ref()),
            _ => None,
        }
    }

    /// Execute on the running engine (the worker, between batches). Changes edit the
    /// operator's base configuration ([`Desired`]); the engine runs its effective form.
    pub fn run(self, d: &mut Director, desired: &mut Desired, now: Instant) -> Reply {
        self.run_checked(d, desired, now, &mut |_| Ok(()))
    }

    /// [`Prepared::run`], with `check` asked about a changed configuration before it is
    /// installed (a refusal leaves everything as it was).
    pub fn run_checked(
        self,
        d: &mut Director,
        desired: &mut Desired,
        now: Instant,
        check: &mut Check<'_>,
    ) -> Reply {
        let plan = {
            let engine = &*d;
            self.plan(desired.base(), &|| engine.config().clone(), &mut |opts| {
                listing::list(engine, opts, now)
            })
        };
        match plan {
            Plan::Reply(r) => r,
            Plan::Install { next, reply } => {
                let installed = install(d, desired, next, now, check);
                if installed.code != 0 {
                    installed
                } else {
                    reply
                }
            }
            Plan::Engine => self.run_on_engine(d),
        }
    }

    /// What needs the engine itself ([`Plan::Engine`]): `-Z`; the sync daemons, which an
    /// engine alone does not have (`rvs daemon` answers them itself).
    pub fn run_on_engine(&self, d: &mut Director) -> Reply {
        match &self.command {
            Command::Zero(key) => {
                if d.zero_counters(key.as_ref()) {
                    Reply::ok(String::new())
                } else {
                    Reply::fail(255, "No such service")
                }
            }
            Command::StartDaemon(_) => Reply::fail(255, "sync daemons run in `rvs daemon`"),
            Command::StopDaemon { .. } => Reply::fail(255, "No daemon is running"),
            _ => Reply::fail(255, "not a command for the engine"),
        }
    }

    /// What the command asks, worked out from the operator's `base` configuration without
    /// the engine (on a control thread): the reply, or a new base to check and install
    /// (ipvsadm's refusals, "No such service" and the like with exit status 255, come from
    /// here), or [`Plan::Engine`]. `effective` is the running configuration (`-S` saves
    /// it), `list` answers a listing.
    pub fn plan(
        &self,
        base: &rvs_core::model::Config,
        effective: &dyn Fn() -> rvs_core::model::Config,
        list: &mut dyn FnMut(&rvs_config::ipvsadm::ListOptions) -> Result<String, String>,
    ) -> Plan {
        match &self.command {
            Command::Help => Plan::Reply(Reply::ok(usage(&self.program))),
            Command::Version => Plan::Reply(Reply::ok(version(&self.program))),
            Command::List(opts) => Plan::Reply(match list(opts) {
                Ok(text) => Reply::ok(text),
                Err(e) => Reply::fail(1, &e),
            }),
            Command::Save { .. } => Plan::Reply(Reply::ok(ipvsadm::save(&effective()))),
            Command::StartDaemon(_) | Command::StopDaemon { .. } | Command::Zero(_) => Plan::Engine,
            Command::Restore => self.restore(base, list),
            change => {
                let mut next = base.clone();
                match ipvsadm::apply(&mut next, change) {
                    Ok(()) => Plan::Install {
                        next,
                        reply: Reply::ok(String::new()),
                    },
                    Err(e) => Plan::Reply(Reply::fail(255, &e)),
                }
            }
        }
    }
}

/// What a command asks of the daemon ([`Prepared::plan`]).
#[derive(Debug)]
pub enum Plan {
    /// Answer this; nothing changes.
    Reply(Reply),
    /// Make `next` the base configuration (checked, then installed), then answer `reply`
    /// (an installation refused answers its own refusal instead).
    Install {
        /// The new base.
        next: rvs_core::model::Config,
        /// The answer once installed.
        reply: Reply,
    },
    /// Needs the engine or the daemon: [`Prepared::run_on_engine`], or the daemon's sync
    /// daemons ([`Prepared::sync_request`]).
    Engine,
}

impl Prepared {
    /// `-R`: ipvsadm 1.31 `restore_table()` runs each line through `process_options()`,
    /// whose kernel errors print `ipvs_strerror()` and return -1 while the loop goes on,
    /// and whose parse errors `fail(2, ...)` exit at once; `main()` returns the last
    /// line's result. Lines change a copy of the base, each checked as the kernel would
    /// check it; the copy is installed once at the end.
    fn restore(
        &self,
        base: &rvs_core::model::Config,
        list: &mut dyn FnMut(&rvs_config::ipvsadm::ListOptions) -> Result<String, String>,
    ) -> Plan {
        let mut next = base.clone();
        let mut reply = Reply::ok(String::new());
        for line in &self.restore {
            let command = match line {
                RestoreLine::Run(c) => c,
                RestoreLine::Stop(e) => {
                    reply.stderr += &e.message;
                    if !reply.stderr.ends_with('\n') {
                        reply.stderr.push('\n');
                    }
                    reply.code = e.exit_code;
                    break;
                }
            };
            reply.code = 0;
            let outcome = match command {
                Command::List(opts) => list(opts).map(|t| reply.stdout += &t),
                Command::Save { .. } => {
                    reply.stdout += &ipvsadm::save(&next);
                    Ok(())
                }
                // A -R inside -R: `tryhelp_exit(argv[0], -1)` ends ipvsadm.
                Command::Restore => {
                    reply.stderr += &try_help(&self.program);
                    reply.code = 255;
                    break;
                }
                Command::Help => {
                    reply.stdout += &usage(&self.program);
                    Ok(())
                }
                Command::Version => {
                    reply.stdout += &version(&self.program);
                    Ok(())
                }
                Command::StartDaemon(_) | Command::StopDaemon { .. } => Err(
                    "the connection sync daemons cannot be started or stopped from -R \
                         input: run rvsadm --start-daemon / --stop-daemon"
                        .to_string(),
                ),
                change => {
                    let mut candidate = next.clone();
                    ipvsadm::apply(&mut candidate, change).and_then(|()| {
                        candidate
                            .validate()
                            .map_err(|errs| {
                                let m: Vec<String> = errs.iter().map(ToString::to_string).collect();
                                m.join("; ")
                            })
                            .map(|()| next = candidate)
                    })
                }
            };
            if let Err(m) = outcome {
                reply.stderr += &m;
                reply.stderr.push('\n');
                reply.code = 255;
            }
        }
        Plan::Install { next, reply }
    }
}

/// Parse and execute at once on an engine without health monitoring (tests, and callers
/// holding the engine): the engine's configuration is the base.
pub fn execute(d: &mut Director, args: &[String], stdin: &str, now: Instant) -> Reply {
    let mut desired = Desired::new(d.config().clone());
    match prepare(args, stdin) {
        Ok(p) => p.run(d, &mut desired, now),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::{NetConfig, OwnedAddr, PortConfig, PortId};
    use rvs_core::model::{Config, Prefix, Protocol, ServiceKey, VirtualServiceConfig};

    fn net() -> NetConfig {
        NetConfig {
            ports: vec![PortConfig {
                id: PortId(0),
                mac: [2, 0, 0, 0, 0, 1],
                addrs: vec![Prefix {
                    addr: "10.1.0.1".parse().unwrap(),
                    len: 24,
                }],
                mtu: 1500,
            }],
            routes: Vec::new(),
            owned: vec![OwnedAddr {
                addr: "10.1.0.100".parse().unwrap(),
                port: PortId(0),
                mac: None,
            }],
        }
    }

    fn with(addrs: &[&str]) -> Config {
        let mut c = Config::default();
        for a in addrs {
            c.services.push(VirtualServiceConfig::new(ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: a.parse().unwrap(),
                port: 80,
            }));
        }
        c
    }

    #[test]
    fn new_service_addresses_are_owned_on_their_link_or_refused() {
        let (net, before) = (net(), with(&["10.1.0.100"]));
        let got = addresses_to_own(&net, true, &before, &with(&["10.1.0.100", "10.1.0.101"]));
        assert_eq!(
            got.unwrap()
                .iter()
                .map(|o| (o.addr.to_string(), o.port))
                .collect::<Vec<_>>(),
            [("10.1.0.101".to_string(), PortId(0))]
        );
        let err = addresses_to_own(&net, true, &before, &with(&["192.0.2.80"])).unwrap_err();
        assert!(
            err.starts_with("192.0.2.80 is on no link the director is attached to (10.1.0.1/24)"),
            "{err}"
        );
        let err = addresses_to_own(&net, false, &before, &with(&["10.1.0.101"])).unwrap_err();
        assert!(
            err.starts_with("10.1.0.101 is not an address failover moves"),
            "{err}"
        );
        // Owned already, or the service existed before: nothing to own, nothing refused.
        assert!(
            addresses_to_own(&net, false, &before, &with(&["10.1.0.100"]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_refused_change_installs_nothing_however_often_it_is_asked() {
        let net = net();
        let base = with(&["10.1.0.100"]);
        let mut d = Director::new(net.clone(), &base, Default::default()).unwrap();
        let mut desired = Desired::new(base.clone());
        let now = Instant::from_secs(1);
        for _ in 0..2 {
            let args: Vec<String> = ["rvsadm", "-A", "-t", "192.0.2.80:80", "-s", "rr"]
                .map(String::from)
                .to_vec();
            let cmd = prepare(&args, "").unwrap();
            let mut check = |next: &Config| addresses_to_own(&net, true, &base, next).map(drop);
            let r = cmd.run_checked(&mut d, &mut desired, now, &mut check);
            assert_eq!(r.code, 255);
            assert!(
                r.stderr.starts_with("192.0.2.80 is on no link"),
                "{}",
                r.stderr
            );
            assert_eq!(desired.base(), &base);
            assert_eq!(d.config(), &base);
        }
        // -R with the same line is refused too, whole.
        let args: Vec<String> = vec!["rvsadm".into(), "-R".into()];
        let cmd = prepare(
            &args,
            "-A -t 10.1.0.101:80 -s rr\n-A -t 192.0.2.80:80 -s rr\n",
        )
        .unwrap();
        let mut check = |next: &Config| addresses_to_own(&net, true, &base, next).map(drop);
        let r = cmd.run_checked(&mut d, &mut desired, now, &mut check);
        assert_eq!(r.code, 255, "{}", r.stderr);
        assert!(
            r.stderr.starts_with("192.0.2.80 is on no link"),
            "{}",
            r.stderr
        );
        assert_eq!(d.config(), &base);
    }
}
