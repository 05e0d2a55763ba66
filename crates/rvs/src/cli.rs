//! `rvs`'s command line (clap): every subcommand, its options and their help. `--help` of
//! each is this file's doc comments; the man pages (`rvs man DIR`) and shell completions
//! (`rvs completions SHELL`) are generated from the same definitions.
//!
//! Exit statuses: 0 done; 1 the work failed (an invalid configuration, a daemon that cannot
//! be reached, ...); 2 a usage error (clap's: unknown option, missing or bad value), with
//! the message on stderr. `--help` prints to stdout and exits 0.
//!
//! Adding a daemon option: a field with a doc comment and `#[arg(long)]` in [`DaemonArgs`]
//! and its line in [`DaemonArgs::options`] (the field of `rvs::daemon::Options` it fills).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
use clap::{ArgGroup, Args, Parser, Subcommand};
use rvs::load::Format;
use rvs::logging::LogFormat;
use rvs::tuning::{Sysctl, Tuning};

/// The Linux Virtual Server (LVS) director in userspace.
///
/// rvs runs an LVS director (`rvs daemon`) from Piranha's lvs.cf, keepalived.conf, ipvsadm
/// rules or its own TOML, forwarding in userspace; `rvsadm` (installed beside it) takes
/// ipvsadm's command line against a running daemon.
#[derive(Debug, Parser)]
#[command(
    name = "rvs",
    version,
    subcommand_required = true,
    arg_required_else_help = true,
    after_long_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

const AFTER_HELP: &str = "\
Exit status: 0 done; 1 the command failed (invalid configuration, unreachable daemon, ...);
2 a usage error. `rvs COMMAND --help` describes each command.

rvsadm, rvs list and rvs reload find the daemon by --control PATH, else $RVS_CONTROL, else as
the one daemon with a live control socket in $RVS_RUN_DIR (else /run/rvs). RVS_LOG sets the
daemon's log filter when --log-level is not given.";

/// `rvs`'s commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a director from a configuration file.
    ///
    /// Runs a director (lvs.cf, keepalived.conf, ipvsadm rules or TOML), health-checking
    /// its real servers as the file says. It attaches (AF_PACKET) to the devices its VIPs
    /// and NAT router name and to the links of its real servers, owns the VIPs and floating
    /// addresses (ARP/ND, gratuitous ARP at start), and refuses to start while the kernel
    /// forwards in its namespace. SIGTERM/SIGINT stop it; SIGHUP reloads FILE (as `rvs
    /// reload` does). Exit 1 when the file is invalid or the director cannot start.
    Daemon(DaemonArgs),
    /// Validate a configuration and print its effective form.
    ///
    /// Prints the effective configuration in `ipvsadm -S -n` form with `# rvs:` lines for
    /// the rest (owned addresses, names, health checks, failover) and exits 0, or prints
    /// file:line:column diagnostics and exits 1. Warnings go to stderr.
    CheckConfig(CheckConfigArgs),
    /// Translate a configuration into another format.
    ///
    /// Keeps the file's whole meaning: refused (exit 1, each loss named on stderr) where the
    /// target format cannot express it, unless --lossy (then written, the losses listed as
    /// warnings). The translation goes to stdout.
    Convert(ConvertArgs),
    /// Reload a running daemon's configuration file.
    ///
    /// Prints what changed. An invalid file is refused with file:line:column diagnostics
    /// (exit 1) and the running configuration stays.
    Reload(ControlArgs),
    /// List a running daemon's services, connections, health or failover state.
    ///
    /// `ipvsadm -L -n`-style listings (addresses are always numeric); --health shows each
    /// monitored real server (up or down, effective and configured weight, checks passed and
    /// failed, the last failure); --failover each VRRP instance's state, priority and advert
    /// counters (or pulse's role and heartbeats). At most one of the views.
    List(ListArgs),
    /// Withdraw an active-active director's VIPs from the routers.
    ///
    /// The daemon removes its VIP routes (BIRD withdraws them), waits the convergence delay
    /// for the routers, and answers: the director then carries no new flows and can be
    /// stopped without losing one. `undrain-director` undoes it.
    DrainDirector(ControlArgs),
    /// Announce an active-active director's VIPs again after `drain-director`.
    UndrainDirector(ControlArgs),
    /// The real-server companion: DR and TUN setup, load agent.
    #[command(subcommand)]
    Realserver(rvs::realserver::RealServerCommand),
    /// Build a namespace lab, run a director in it and show it serving.
    ///
    /// Needs root. Builds a client, a director and real servers (each running `rvs httpd`)
    /// in network namespaces, starts `rvs daemon` on the director with a Piranha lvs.cf,
    /// sends requests through the VIP 10.1.0.100, prints how they spread and the daemon's
    /// listing, and removes everything (unless --keep). With --failover: two directors
    /// (VRRP, connection sync); the master is killed under traffic and the backup takes
    /// over.
    Demo(rvs_lab::demo::DemoArgs),
    /// The namespace lab of the demo, the tests and the benchmarks.
    Lab(rvs_lab::lab::LabArgs),
    /// The built-in HTTP responder the lab's real servers run.
    ///
    /// Every request gets `200 OK` with body `NAME\n`; `GET /bytes/N` streams N bytes.
    /// Keep-alive and pipelining; request heads up to 16 KiB, bodies up to 1 MiB; idle
    /// connections closed after 60 s. Not a web server: no files, no TLS.
    Httpd(rvs_lab::httpd::HttpdArgs),
    /// The web console (Piranha Configuration Tool's successor), or `passwd`/`token`.
    ///
    /// Serves the live monitoring page, the JSON API and the operator actions on
    /// 127.0.0.1:3636 (an address other than loopback needs --cert and --key), talking to
    /// the daemon over its control socket only. Refuses to start without a user written by
    /// `rvs console passwd USER --role admin`. See docs/console.md.
    Console(rvs_console::Args),
    /// Print a shell completion script to stdout.
    ///
    /// For example: `rvs completions bash > /etc/bash_completion.d/rvs`,
    /// `rvs completions zsh > ~/.zfunc/_rvs`,
    /// `rvs completions fish > ~/.config/fish/completions/rvs.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (roff).
    ///
    /// Without DIR: rvs(1) to stdout (`rvs man | man -l -`). With DIR: rvs.1 and a page per
    /// command (rvs-daemon.1, rvs-lab-up.1, ...) into DIR, e.g. /usr/local/share/man/man1.
    Man {
        /// The directory to write the pages into.
        dir: Option<PathBuf>,
    },
}

/// Which file, in which format, read how: shared by `daemon` and `check-config`.
#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    /// The file's format (detected from its name and content when not given).
    #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
    pub(crate) format: Option<Format>,
    /// keepalived's -i: which `@ID` lines of keepalived.conf apply (default: the host name
    /// up to its first dot, as keepalived).
    #[arg(long, value_name = "ID")]
    pub(crate) config_id: Option<String>,
    /// Refuse a file with warnings (every warning an error), for CI pipelines; a daemon
    /// refuses such a file at start and on reload.
    #[arg(long)]
    pub(crate) strict: bool,
}

/// `rvs daemon`'s options.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// The configuration file (lvs.cf, keepalived.conf, ipvsadm rules or TOML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// Format, configuration id, strictness.
    #[command(flatten)]
    pub(crate) source: SourceArgs,
    /// The control socket (`rvs list`, `rvs reload`, `rvsadm`); default
    /// $RVS_RUN_DIR (else /run/rvs)/<FILE's stem>.ctl.
    #[arg(long, value_name = "PATH")]
    pub(crate) control: Option<PathBuf>,
    /// Make the control socket group NAME's too, mode 0660 (default: 0600, the daemon's
    /// user's only): for `rvs console` or rvsadm run as a user in that group.
    #[arg(long, value_name = "NAME")]
    pub(crate) control_group: Option<String>,
    /// Write the daemon's process id to PATH.
    #[arg(long, value_name = "PATH")]
    pub(crate) pid_file: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Log as text lines or as one JSON object per line (on stderr).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = log_format_parser())]
    pub(crate) log_format: LogFormat,
    /// The log filter (an EnvFilter directive such as `info` or `rvs=debug`; default
    /// $RVS_LOG, else info).
    #[arg(long, value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Bound the neighbour table per family (1..=4194304), over the file's `[neighbors]
    /// gc_thresh3` (default 1024).
    #[arg(long, value_name = "N", value_parser = gc_thresh3)]
    pub(crate) gc_thresh3: Option<usize>,
    /// Cap each family's connection table at SIZE bytes (512M by default; K, M, G
    /// suffixes), over the file's value.
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub(crate) conn_table_memory: Option<usize>,
    /// Set an IPVS sysctl over the file's value: amemthresh, am_droprate, drop_entry,
    /// drop_packet, secure_tcp or sync_sock_size (also as net.ipv4.vs.NAME); repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = sysctl)]
    pub(crate) sysctl: Vec<(Sysctl, u32)>,
    /// The data plane's SCHED_FIFO priority (1..=99), or 0 for ordinary scheduling.
    #[arg(long, value_name = "N", default_value_t = rvs::daemon::DEFAULT_RT_PRIORITY,
          value_parser = clap::value_parser!(u8).range(0..=99))]
    pub(crate) rt_priority: u8,
    /// Run as user NAME after start, keeping only the capabilities the daemon needs (it
    /// keeps only those in any case).
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// Kill notify, hook and checker scripts still running after SECS seconds (0 < SECS
    /// <= 86400; default 60).
    #[arg(long, value_name = "SECS", value_parser = script_timeout,
          default_value = "60")]
    pub(crate) script_timeout: std::time::Duration,
    /// Bind the data-plane thread to CPU N (0..=1023; default: any CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..1024))]
    pub(crate) cpu: Option<u16>,
    /// After a round that forwarded frames, keep polling the RX rings for USECS
    /// microseconds before sleeping (0..=10000; default 0: sleep at once). Frames arriving
    /// meanwhile (a server's FIN microseconds after its response) are forwarded without a
    /// wake-up; the cost is CPU, so use it with --cpu on a CPU of its own.
    #[arg(long, value_name = "USECS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=10_000))]
    pub(crate) busy_poll: u16,
    /// Forwarding workers (1..=64; default 1), each with its own engine and packet
    /// sockets; a connection's frames all reach one of them (docs/workers.md).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) workers: u16,
    /// SYN admission under overload: `off` stops shedding unproven sources' SYNs while the
    /// SYN ring overflows (default: the file's `[syn_shed] enabled`, else on).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub(crate) syn_shed: Option<bool>,
    /// `xdp`: established NAT, FullNAT and DR IPv4 TCP flows bypass the userspace path via an
    /// XDP program on the director's interfaces (docs/xdp.md); `off` (default): every
    /// frame takes the userspace path.
    #[arg(long, value_name = "xdp|off", value_parser = rvs::fastpath::parse_mode,
          default_value = "off")]
    pub(crate) fast_path: rvs::fastpath::Mode,
    /// Active-active behind ECMP, as the TOML's `[cluster] mode = "active-active"` (its
    /// settings, else the defaults): no ARP/ND for the VIPs, sync as master and backup at
    /// once, VIP routes in table 29302 for BIRD to announce (docs/operating.md).
    #[arg(long)]
    pub(crate) active_active: bool,
}

/// `on` or `off`.
fn on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("on or off, not {v:?}")),
    }
}

/// `--script-timeout SECS`: seconds in (0, 86400].
fn script_timeout(v: &str) -> Result<std::time::Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("seconds in (0, 86400], not {v:?}"))
}

impl DaemonArgs {
    /// The daemon's options: each command-line option into its field of
    /// `rvs::daemon::Options` (logging is set up before, from `log_format`/`log_level`).
    pub(crate) fn options(&self) -> rvs::daemon::Options {
        rvs::daemon::Options {
            control: self
                .control
                .clone()
                .unwrap_or_else(|| rvs::daemon::default_control_path(&self.config)),
            config_path: self.config.clone(),
            format: self.source.format,
            config_id: self.source.config_id.clone(),
            pid_file: self.pid_file.clone(),
            metrics: self.metrics,
            strict: self.source.strict,
            gc_thresh3: self.gc_thresh3,
            tuning: Tuning {
                conn_table_bytes: self.conn_table_memory,
                sysctls: self.sysctl.clone(),
                syn_shed: self.syn_shed,
            },
            rt_priority: self.rt_priority,
            user: self.user.clone(),
            script_timeout: self.script_timeout,
            cpu: self.cpu.map(usize::from),
            busy_poll: std::time::Duration::from_micros(u64::from(self.busy_poll)),
            fast_path: self.fast_path,
            control_group: self.control_group.clone(),
            workers: usize::from(self.workers),
        }
    }
}

/// `rvs check-config`'s options.
#[derive(Debug, Args)]
pub(crate) struct CheckConfigArgs {
    /// Format, configuration id, strictness.
    #[command(flatten)]
    pub(crate) source: SourceArgs,
    /// The configuration file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// `rvs convert`'s options.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The format to write.
    #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
    pub(crate) to: Format,
    /// The input's format (detected when not given).
    #[arg(long, visible_alias = "from", value_name = "FORMAT", value_parser = format_parser())]
    pub(crate) format: Option<Format>,
    /// Write even what loses meaning, listing the losses as warnings.
    #[arg(long)]
    pub(crate) lossy: bool,
    /// The configuration file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// The daemon to talk to.
#[derive(Debug, Args)]
pub(crate) struct ControlArgs {
    /// The daemon's control socket (default: $RVS_CONTROL, else the one live socket in
    /// $RVS_RUN_DIR, else /run/rvs).
    #[arg(long, value_name = "PATH")]
    pub(crate) control: Option<PathBuf>,
}

/// `rvs list`'s options.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("view").multiple(false)))]
pub(crate) struct ListArgs {
    /// The daemon.
    #[command(flatten)]
    pub(crate) control: ControlArgs,
    /// Numeric addresses and ports (always so; taken for ipvsadm habits).
    #[arg(short = 'n', long)]
    pub(crate) numeric: bool,
    /// The connection table (ipvsadm -L -c).
    #[arg(short = 'c', long, group = "view")]
    pub(crate) connection: bool,
    /// Packet and byte counters per service and real server.
    #[arg(long, group = "view")]
    pub(crate) stats: bool,
    /// Rates (connections, packets, bytes per second).
    #[arg(long, group = "view")]
    pub(crate) rate: bool,
    /// Upper and lower connection thresholds.
    #[arg(long, group = "view")]
    pub(crate) thresholds: bool,
    /// Persistent connections (templates) per real server.
    #[arg(long, group = "view")]
    pub(crate) persistent_conn: bool,
    /// Each monitored real server's health.
    #[arg(long, group = "view")]
    pub(crate) health: bool,
    /// Each VRRP instance (or pulse's role).
    #[arg(long, group = "view")]
    pub(crate) failover: bool,
    /// Active-active: each VIP, announced or not and why, and the drain state.
    #[arg(long, group = "view")]
    pub(crate) announce: bool,
    /// Exact counter values (no K/M/G rounding).
    #[arg(long)]
    pub(crate) exact: bool,
}

impl ListArgs {
    /// The words of the control socket's `list` request.
    pub(crate) fn words(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        for (on, word) in [
            (self.connection, "-c"),
            (self.stats, "--stats"),
            (self.rate, "--rate"),
            (self.thresholds, "--thresholds"),
            (self.persistent_conn, "--persistent-conn"),
            (self.health, "--health"),
            (self.failover, "--failover"),
            (self.announce, "--announce"),
            (self.exact, "--exact"),
        ] {
            if on {
                w.push(word);
            }
        }
        w
    }
}

/// `--format`/`--to`: the format names, with their aliases.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    PossibleValuesParser::new([
        PossibleValue::new("lvs.cf")
            .aliases(["lvscf", "piranha"])
            .help("Piranha's lvs.cf"),
        PossibleValue::new("keepalived")
            .alias("keepalived.conf")
            .help("keepalived.conf"),
        PossibleValue::new("ipvsadm")
            .alias("rules")
            .help("ipvsadm rules (ipvsadm -S / -R)"),
        PossibleValue::new("toml")
            .alias("native")
            .help("rvs's native TOML"),
    ])
    .try_map(|s| Format::from_name(&s).ok_or("unknown format"))
}

fn log_format_parser() -> impl clap::builder::TypedValueParser<Value = LogFormat> {
    PossibleValuesParser::new(["text", "json"])
        .try_map(|s| LogFormat::from_name(&s).ok_or("unknown log format"))
}

fn gc_thresh3(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=1 << 22).contains(n))
        .ok_or_else(|| "needs a number in 1..=4194304".to_owned())
}

fn size(v: &str) -> Result<usize, String> {
    rvs_config::parse_size(v).ok_or_else(|| "needs a size such as 512M".to_owned())
}

fn sysctl(v: &str) -> Result<(Sysctl, u32), String> {
    let mut t = Tuning::default();
    t.add_sysctl(v)?;
    Ok(t.sysctls[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rvs").chain(line.split_whitespace()))
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn daemon_options_fill_the_daemon_options() {
        let Command::Daemon(d) = parse(
            "daemon --config=/etc/lvs.cf --format keepalived --config-id=b1 --strict \
             --control /tmp/c.ctl --pid-file=/tmp/p --metrics 127.0.0.1:9100 \
             --log-format=json --log-level debug --gc-thresh3 2048 --conn-table-memory=64M \
             --sysctl drop_entry=1 --sysctl=net.ipv4.vs.secure_tcp=2 --rt-priority=0 \
             --user=rvs --script-timeout 2.5 --cpu=1 --syn-shed off --busy-poll=50 \
             --fast-path xdp --workers 3",
        )
        .unwrap()
        .command
        else {
            panic!("not daemon");
        };
        assert_eq!(d.log_format, LogFormat::Json);
        assert_eq!(d.log_level.as_deref(), Some("debug"));
        let o = d.options();
        assert_eq!(o.config_path, PathBuf::from("/etc/lvs.cf"));
        assert_eq!(o.format, Some(Format::Keepalived));
        assert_eq!(o.config_id.as_deref(), Some("b1"));
        assert!(o.strict);
        assert_eq!(o.control, PathBuf::from("/tmp/c.ctl"));
        assert_eq!(o.pid_file, Some(PathBuf::from("/tmp/p")));
        assert_eq!(o.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(o.gc_thresh3, Some(2048));
        assert_eq!(o.tuning.conn_table_bytes, Some(64 << 20));
        assert_eq!(
            o.tuning.sysctls,
            [(Sysctl::DropEntry, 1), (Sysctl::SecureTcp, 2)]
        );
        assert_eq!(o.rt_priority, 0);
        assert_eq!(o.user.as_deref(), Some("rvs"));
        assert_eq!(o.script_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(o.cpu, Some(1));
        assert_eq!(o.tuning.syn_shed, Some(false));
        assert_eq!(o.busy_poll, std::time::Duration::from_micros(50));
        assert_eq!(o.fast_path, rvs::fastpath::Mode::Xdp);
        assert_eq!(o.workers, 3);

        let Command::Daemon(d) = parse("daemon -c lvs.cf").unwrap().command else {
            panic!("not daemon");
        };
        let o = d.options();
        assert_eq!(o.rt_priority, rvs::daemon::DEFAULT_RT_PRIORITY);
        assert_eq!(o.fast_path, rvs::fastpath::Mode::Off, "off by default");
        assert_eq!(o.control, rvs::daemon::default_control_path(&o.config_path));
        assert_eq!((o.format, o.strict, o.metrics), (None, false, None));
        assert_eq!(o.tuning, Tuning::default());
        assert_eq!(o.script_timeout, rvs::scripts::DEFAULT_NOTIFY_LIMIT);
        assert_eq!(o.user, None);
        assert_eq!(o.busy_poll, std::time::Duration::ZERO);
        assert_eq!(o.workers, 1, "one forwarding worker by default");
        assert_eq!(d.log_format, LogFormat::Text);
        for bad in ["0", "65"] {
            assert!(
                parse(&format!("daemon -c f --workers {bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            "daemon",
            "daemon -c f --gc-thresh3 0",
            "daemon -c f --gc-thresh3 4194305",
            "daemon -c f --rt-priority 100",
            "daemon -c f --busy-poll 10001",
            "daemon -c f --metrics 127.0.0.1",
            "daemon -c f --sysctl drop_entry",
            "daemon -c f --sysctl drop_entry=4",
            "daemon -c f --conn-table-memory lots",
            "daemon -c f --log-format xml",
            "daemon -c f --format yaml",
            "daemon -c f --bogus",
            "check-config",
            "check-config a b",
            "convert f",
            "convert --to yaml f",
            "list --stats --rate",
            "list --health -c",
            "lab exec rs1",
            "demo --requests 0",
            "demo --real-servers 201",
            "httpd --name x",
            "frobnicate",
        ] {
            let e = parse(bad).map(|_| ()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn aliases_and_list_words() {
        let Command::Convert(c) = parse("convert --to=toml --from piranha x.cf")
            .unwrap()
            .command
        else {
            panic!("not convert");
        };
        assert_eq!((c.to, c.format), (Format::Toml, Some(Format::LvsCf)));
        let Command::List(l) = parse("list -n --connection --exact --control=/x")
            .unwrap()
            .command
        else {
            panic!("not list");
        };
        assert_eq!(l.words(), ["-c", "--exact"]);
        assert_eq!(l.control.control, Some(PathBuf::from("/x")));
        let Command::List(l) = parse("list").unwrap().command else {
            panic!("not list");
        };
        assert!(l.words().is_empty());
    }
}
