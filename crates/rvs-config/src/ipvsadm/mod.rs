//! ipvsadm compatibility: the command line of ipvsadm 1.31 ([`parse_command`]) and its
//! rules format, the output of `ipvsadm -S -n` and input of `ipvsadm -R` ([`save`],
//! [`parse_rules`]).
//!
//! [`parse_command`] reproduces ipvsadm's grammar (popt's short clusters, long options,
//! `-p`'s optional value), its defaults (scheduler wlc, weight 1, persistence 360 s,
//! direct routing) and each refusal with ipvsadm's own message and exit status, checked
//! in ipvsadm's order. It returns a [`Command`] in model types; it executes nothing.
//! [`save`] prints a [`Config`] as ipvsadm 1.31 prints the kernel's table with `-S -n`,
//! sorted as libipvs sorts it; [`parse_rules`] reads such text line by line as `-R` does
//! and applies each command in order.
//!
//! Where the rules format cannot carry the model, rvs extends it, and says so here:
//! - `--fullnat` is a forwarding method beside `-g -i -m` (ipvsadm has no FullNAT);
//! - `--local-pool LO-HI [ADDR...]` is a command setting [`Config::local_pool`];
//! - [`save`] writes `--set tcp tcpfin udp` when the timeouts are not the kernel's
//!   defaults (ipvsadm -S never does), and ` -x U -y L` at the end of a real-server line
//!   when thresholds are set (ipvsadm -S drops them, so its restore loses them);
//! - for sh and mh, flag-3 is written as `flag-3` (ipvsadm prints nothing for it);
//! - DPVS's `-j enable|disable` / `--synproxy` (tools/ipvsadm/ipvsadm.c) turns the SYN
//!   proxy on for a TCP or firewall-mark service ([`Config::synproxy`]); [`save`] writes
//!   ` -j enable` after `-o` (DPVS's `-S` drops the flag, so its restore loses it), and a
//!   UDP or SCTP service with it, or a direct-routing or tunnelling real server in a
//!   proxied service, is refused (the proxy cannot translate replies it does not see);
//! - in rules text, a word starting with `#` ends the line (ipvsadm's `config_stream_read`
//!   means to ignore comments, but its test never matches).
//!
//! Host and service names are taken where ipvsadm takes them (`-t`, `-u`,
//! `--sctp-service`, `-r`, `-M`) through a [`Names`] the caller gives
//! ([`parse_command_with`], [`parse_rules_with`]); [`parse_command`] and [`parse_rules`]
//! take numbers only. [`numeric_args`] and [`numeric_rules`] replace each name by its
//! number so that a numeric reader (the daemon) reads what ipvsadm would have read;
//! [`name_save`] and [`addrport_name`] print names as `-S` and `-L` without `-n` do.
//!
//! Fwmark classifier rules, switches, table size and policy, and the mh table size have
//! no rules form and are not written. Nothing here touches the system, and nothing
//! prints.

mod cli;
mod libc;
mod names;
mod popt;
mod rules;

pub use names::{FixedNames, Names, NoNames, addrport_name, service_proto};

use std::net::IpAddr;

use rvs_core::model::{
    Config, LocalPool, RealServerConfig, ServiceKey, Timeouts, VirtualServiceConfig,
};

pub use rules::{
    ipvsadm_order, name_save, numeric_rules, parse_rules, parse_rules_with, read_rules,
    restore_lines, save, save_in_order,
};

/// A command line ipvsadm refuses: the text ipvsadm prints on stderr and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// ipvsadm's message, without the newline `fail()` adds.
    pub message: String,
    /// ipvsadm's exit status: 2 for `fail(2, ...)`, 255 for popt errors, "Try `ipvsadm
    /// -h'..." and refusals the kernel would give (ipvsadm returns -1 from `main()`).
    pub exit_code: i32,
    /// Index in `args` of the word to blame, when there is one.
    pub arg_index: Option<usize>,
}

impl core::fmt::Display for UsageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// One ipvsadm command, in model types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`: add a virtual service (no real servers yet). `pe` is `--pe` (only `sip`
    /// exists; the model has no persistence engine).
    AddService {
        /// The service with ipvsadm's defaults filled in.
        service: VirtualServiceConfig,
        /// `--pe` engine name.
        pe: Option<String>,
        /// DPVS's `-j enable` (`--synproxy`): the SYN proxy on for this service
        /// ([`Config::synproxy`]).
        synproxy: bool,
    },
    /// `-E`: replace a service's settings (scheduler, flags, persistence, `-o`); options
    /// not given take their defaults again, as in ipvsadm.
    EditService {
        /// The new settings (its `real_servers` is empty and not meant to replace any).
        service: VirtualServiceConfig,
        /// `--pe` engine name.
        pe: Option<String>,
        /// `-j enable`: the SYN proxy on for this service, off without it (DPVS's `-E`
        /// replaces the service's flags).
        synproxy: bool,
    },
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-C`.
    Clear,
    /// `-R`: read rules from stdin (see [`parse_rules`]).
    Restore,
    /// `-S [-n]`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-a`.
    AddServer {
        /// The virtual service.
        service: ServiceKey,
        /// The real server (port = virtual port for `-g`/`-i` on address services).
        server: RealServerConfig,
    },
    /// `-e`: replace a real server's settings (defaults again for options not given).
    EditServer {
        /// The virtual service.
        service: ServiceKey,
        /// The new settings.
        server: RealServerConfig,
    },
    /// `-d`.
    DeleteServer {
        /// The virtual service.
        service: ServiceKey,
        /// Real server address.
        addr: IpAddr,
        /// Real server port (the virtual port when `-r` has none).
        port: u16,
    },
    /// `-L`, `-l`, or no arguments at all.
    List(ListOptions),
    /// `-Z [service]`.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (0 leaves a timeout unchanged).
    SetTimeouts(Timeouts),
    /// `--start-daemon master|backup`.
    StartDaemon(DaemonOptions),
    /// `--stop-daemon master|backup`.
    StopDaemon {
        /// Which daemon.
        state: DaemonState,
        /// `--syncid` (0 when not given).
        syncid: u8,
    },
    /// rvs extension `--local-pool LO-HI [ADDR...]`: FullNAT's local address pool.
    LocalPool(LocalPool),
    /// `-h`: ipvsadm prints its usage on stdout and exits 0.
    Help,
    /// `-v`: ipvsadm prints its version on stdout and exits 0.
    Version,
}

/// What `-L` lists, in ipvsadm's precedence (`-c`, a service, `--timeout`, `--daemon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListWhat {
    /// The whole table.
    #[default]
    All,
    /// One service (`-L -t addr:port`).
    Service(ServiceKey),
    /// `-c`: connections.
    Connections,
    /// `--timeout`.
    Timeout,
    /// `--daemon`.
    Daemon,
}

/// The listing format flags (`FMT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListFormat {
    /// `-n`.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--tun-info`.
    pub tun_info: bool,
    /// `-X` / `--exact`.
    pub exact: bool,
    /// `--nosort` (`--sort` is accepted and does nothing).
    pub nosort: bool,
}

/// `-L`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// What to list.
    pub what: ListWhat,
    /// How.
    pub format: ListFormat,
}

/// Which sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonState {
    /// `master`.
    Master,
    /// `backup`.
    Backup,
}

/// `--start-daemon`'s options; `None` leaves the kernel's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonOptions {
    /// Master or backup.
    pub state: DaemonState,
    /// `--mcast-interface` (default `eth0`, cut to 15 bytes).
    pub mcast_interface: String,
    /// `--syncid` (0 when not given, whatever ipvsadm's usage text says).
    pub syncid: u8,
    /// `--sync-maxlen` (1..=65507).
    pub sync_maxlen: Option<u16>,
    /// `--mcast-group` (a multicast address).
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port`.
    pub mcast_port: Option<u16>,
    /// `--mcast-ttl`.
    pub mcast_ttl: Option<u8>,
}

/// Parse an ipvsadm command line. `args[0]` is the program name (it appears in "Try
/// `ipvsadm -h'..."), as in `std::env::args()`; `args` of length 1 lists the table.
/// Errors carry ipvsadm's message and exit status and are checked in ipvsadm's order.
/// Numbers only: a host or service name is refused as ipvsadm refuses a name it cannot
/// resolve ([`parse_command_with`] resolves them).
pub fn parse_command(args: &[String]) -> Result<Command, UsageError> {
    parse_command_with(args, &NoNames)
}

/// [`parse_command`] with host and service names looked up in `names`, where and as
/// ipvsadm looks them up.
pub fn parse_command_with(args: &[String], names: &dyn Names) -> Result<Command, UsageError> {
    cli::parse(args, names, &mut Vec::new()).map(|(c, _)| c)
}

/// [`parse_command_with`], and `args` with each host and service name that resolved
/// replaced by its number (the words that hold no name unchanged): a command line the
/// numeric [`parse_command`] reads as ipvsadm reads the original. The names before a
/// refusal are replaced too, so the numeric reader refuses at the same point.
pub fn numeric_args(
    args: &[String],
    names: &dyn Names,
) -> (Result<Command, UsageError>, Vec<String>) {
    let mut rewrites = Vec::new();
    let result = cli::parse(args, names, &mut rewrites).map(|(c, _)| c);
    let mut out = args.to_vec();
    for (w, new) in rewrites {
        out[w] = new;
    }
    (result, out)
}

/// Apply one command to a configuration as the kernel would, or say why not with the
/// message ipvsadm prints (`ipvs_strerror()`: "Service already exists", "No such
/// service", "Service not defined", "Destination already exists", "No such
/// destination"). Listing, saving, daemon and help commands change nothing and are
/// refused: they are not configuration.
pub fn apply(config: &mut Config, command: &Command) -> Result<(), String> {
    rules::apply(config, command)
}
