//! rvs: the Linux Virtual Server director in userspace.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

mod demo;
mod demo_failover;
mod httpd;
mod lab;

const USAGE: &str = "\
rvs — the Linux Virtual Server director in userspace

usage:
  rvs demo [--method nat|dr|tun|fullnat] [--requests N] [--keep]
                          build a namespace lab, run a director, show it serving
  rvs demo --failover [--keep]
                          two directors (VRRP, connection sync); kill the master
                          under traffic and show the backup taking over
  rvs lab up|down|exec|show|list ...
                          the namespace lab of the demo, tests and benchmarks
  rvs httpd --listen ADDR:PORT --name TEXT
                          the built-in HTTP responder the lab's real servers run
  rvs realserver dr|tun --vip IP ...
                          real-server companion: DR's VIP on lo and ARP sysctls,
                          userspace IPIP/GRE/GUE decapsulation through TUN
  rvs realserver agent [--listen ADDR:PORT]
                          answer the director's load queries (load_monitor)
  rvs daemon -c FILE [--format F] [--control PATH] [--pid-file PATH] [--metrics ADDR:PORT]
             [--log-format text|json] [--log-level LEVEL] [--strict] [--config-id ID]
             [--gc-thresh3 N] [--conn-table-memory SIZE] [--sysctl NAME=VALUE]...
             [--rt-priority N] [--syn-shed on|off]
                          run a director (lvs.cf, keepalived.conf, ipvsadm rules or TOML),
                          health-checking its real servers as the file says; SIGHUP
                          reloads FILE, --metrics serves Prometheus metrics at
                          http://ADDR:PORT/metrics; --strict refuses a file with warnings
                          (at start and on reload). The control socket defaults to
                          $RVS_RUN_DIR (else /run/rvs)/<FILE's stem>.ctl.
                          --gc-thresh3 bounds the neighbour table per family (over
                          the file's [neighbors] gc_thresh3; default 1024).
                          --conn-table-memory caps each family's connection table
                          (default 512M); --sysctl sets amemthresh, am_droprate,
                          drop_entry, drop_packet or secure_tcp over the file's values.
                          --rt-priority N: the data plane's SCHED_FIFO priority
                          (default 1, 0 = ordinary scheduling). --syn-shed off stops
                          shedding unproven SYNs while the SYN ring overflows (default on).
  rvs check-config [--format lvs.cf|keepalived|ipvsadm|toml] [--strict] [--config-id ID] FILE
                          validate a configuration: prints the effective configuration in
                          ipvsadm -S -n form with `# rvs:` lines for the rest (owned
                          addresses, names, health checks, failover) (exit 0), or
                          file:line:column diagnostics (exit 1);
                          --strict turns every warning into an error (for CI pipelines)

  --config-id ID          keepalived's -i: which `@ID` lines of keepalived.conf apply
                          (default: the host name up to its first dot, as keepalived)
  rvs convert --to toml|keepalived|lvs.cf|ipvsadm [--format F] [--lossy] FILE
                          translate a configuration, keeping its whole meaning; refused
                          (exit 1, each loss named) where the target format cannot express
                          it, unless --lossy (then written, the losses listed as warnings)
  rvs reload [--control PATH]
                          reload a running daemon's configuration file (refused with
                          file:line:column when invalid; the running one stays)
  rvs list [--control PATH] [-c|--stats|--rate|--thresholds|--persistent-conn] [--exact]
                          ipvsadm -L -n style listing of a running daemon
  rvs list --health [--control PATH]
                          each monitored real server: up or down, effective and configured
                          weight, checks passed/failed, the last failure
  rvs list --failover [--control PATH]
                          each VRRP instance's state, priority and advert counters (or
                          pulse's role and heartbeats)
  rvs --version

rvsadm (installed beside rvs) takes ipvsadm's command line against a running daemon.
rvsadm, rvs list and rvs reload find the daemon by --control PATH, else $RVS_CONTROL, else
as the one daemon with a live control socket in $RVS_RUN_DIR (else /run/rvs).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        Some("daemon") => daemon(rest),
        Some("list") => list(rest),
        Some("reload") => reload(rest),
        Some("check-config") => check_config(rest),
        Some("convert") => convert(rest),
        Some("lab") => lab::main(rest),
        Some("httpd") => httpd::main(rest),
        Some("demo") => demo::main(rest),
        Some("realserver") => rvs::realserver::main(rest),
        Some("--version" | "-V") => {
            println!("rvs {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown command {other:?}")),
        None => usage_error("no command given"),
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("rvs: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

/// The value after option `name`, or an error message.
fn value<'a>(args: &'a [String], i: &mut usize, name: &str) -> Result<&'a str, String> {
    *i += 1;
    args.get(*i)
        .map(String::as_str)
        .ok_or_else(|| format!("option {name} needs a value"))
}

fn daemon(args: &[String]) -> ExitCode {
    let mut config = None;
    let mut control = None;
    let mut pid_file = None;
    let mut metrics = None;
    let mut format = None;
    let mut log_format = rvs::logging::LogFormat::Text;
    let mut log_level = None;
    let mut strict = false;
    let mut config_id = None;
    let mut gc_thresh3 = None;
    let mut tuning = rvs::tuning::Tuning::default();
    let mut rt_priority = rvs::daemon::DEFAULT_RT_PRIORITY;
    let mut i = 0;
    while i < args.len() {
        let r = match args[i].as_str() {
            "--gc-thresh3" => value(args, &mut i, "--gc-thresh3").and_then(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1 << 22).contains(n))
                    .map(|n| gc_thresh3 = Some(n))
                    .ok_or_else(|| format!("--gc-thresh3 needs a number in 1..=4194304, not {v:?}"))
            }),
            "--strict" => {
                strict = true;
                Ok(())
            }
            "--sysctl" => value(args, &mut i, "--sysctl").and_then(|v| tuning.add_sysctl(v)),
            "--syn-shed" => value(args, &mut i, "--syn-shed").and_then(|v| tuning.set_syn_shed(v)),
            "--conn-table-memory" => value(args, &mut i, "--conn-table-memory").and_then(|v| {
                rvs_config::parse_size(v)
                    .map(|b| tuning.conn_table_bytes = Some(b))
                    .ok_or_else(|| {
                        format!("--conn-table-memory needs a size such as 512M, not {v:?}")
                    })
            }),
            "--log-format" => value(args, &mut i, "--log-format").and_then(|v| {
                rvs::logging::LogFormat::from_name(v)
                    .map(|f| log_format = f)
                    .ok_or_else(|| format!("--log-format is text or json, not {v:?}"))
            }),
            "--log-level" => {
                value(args, &mut i, "--log-level").map(|v| log_level = Some(v.to_string()))
            }
            "--format" => value(args, &mut i, "--format")
                .and_then(parse_format)
                .map(|f| format = Some(f)),
            "--config-id" => {
                value(args, &mut i, "--config-id").map(|v| config_id = Some(v.to_string()))
            }
            "-c" | "--config" => value(args, &mut i, "-c").map(|v| config = Some(PathBuf::from(v))),
            "--control" => {
                value(args, &mut i, "--control").map(|v| control = Some(PathBuf::from(v)))
            }
            "--metrics" => value(args, &mut i, "--metrics").and_then(|v| {
                v.parse::<std::net::SocketAddr>()
                    .map(|a| metrics = Some(a))
                    .map_err(|_| format!("--metrics needs ADDR:PORT, not {v:?}"))
            }),
            "--pid-file" => {
                value(args, &mut i, "--pid-file").map(|v| pid_file = Some(PathBuf::from(v)))
            }
            "--rt-priority" => value(args, &mut i, "--rt-priority").and_then(|v| {
                v.parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 99)
                    .map(|p| rt_priority = p)
                    .ok_or_else(|| format!("--rt-priority is 0 (off) to 99, not {v:?}"))
            }),
            other => Err(format!("unknown option {other:?}")),
        };
        if let Err(e) = r {
            return usage_error(&e);
        }
        i += 1;
    }
    let Some(config) = config else {
        return usage_error("rvs daemon needs -c FILE");
    };
    if let Err(e) = rvs::logging::init(log_format, log_level.as_deref()) {
        return usage_error(&e);
    }
    let (loaded, marks) = match rvs::load::admit(&config, format, config_id.as_deref(), strict) {
        Ok(l) => l,
        Err(text) => {
            eprint!("{text}");
            return ExitCode::FAILURE;
        }
    };
    if !marks.read.is_empty() {
        tracing::info!("{marks}");
    }
    if !loaded.warnings.is_empty() {
        eprint!("{}", rvs_config::render_all(&loaded.warnings));
    }
    let mut plan = match rvs::load::plan(&loaded) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rvs daemon: {}: {e}", config.display());
            return ExitCode::FAILURE;
        }
    };
    tuning.apply(&mut plan.config);
    let opts = rvs::daemon::Options {
        control: control.unwrap_or_else(|| rvs::daemon::default_control_path(&config)),
        config_path: config,
        format,
        config_id,
        pid_file,
        metrics,
        strict,
        gc_thresh3,
        tuning,
        rt_priority,
    };
    match rvs::daemon::run(plan, loaded.health.clone(), loaded.failover.clone(), &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(args: &[String]) -> ExitCode {
    let mut control = None;
    let mut opts: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--control" => match value(args, &mut i, "--control") {
                Ok(v) => control = Some(PathBuf::from(v)),
                Err(e) => return usage_error(&e),
            },
            "-n" | "--numeric" => {}
            o @ ("-c" | "--connection" | "--stats" | "--rate" | "--thresholds"
            | "--persistent-conn" | "--exact" | "--health" | "--failover") => opts.push(o),
            other => return usage_error(&format!("unknown list option {other:?}")),
        }
        i += 1;
    }
    let control = match rvs::locate::control_socket(control) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs list: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rvs::daemon::request_listing(&control, &opts) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvs list: {}: {e}", control.display());
            ExitCode::FAILURE
        }
    }
}

fn reload(args: &[String]) -> ExitCode {
    let mut control = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--control" => match value(args, &mut i, "--control") {
                Ok(v) => control = Some(PathBuf::from(v)),
                Err(e) => return usage_error(&e),
            },
            other => return usage_error(&format!("unknown reload option {other:?}")),
        }
        i += 1;
    }
    let control = match rvs::locate::control_socket(control) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs reload: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rvs::daemon::control_request(&control, "reload") {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvs reload: {}: {e}", control.display());
            ExitCode::FAILURE
        }
    }
}

fn parse_format(v: &str) -> Result<rvs::load::Format, String> {
    rvs::load::Format::from_name(v)
        .ok_or_else(|| format!("unknown format {v:?} (lvs.cf, keepalived, ipvsadm or toml)"))
}

/// `rvs check-config`: parse and validate; print the effective configuration as ipvsadm
/// rules, and what ipvsadm cannot express as `#` comments.
fn check_config(args: &[String]) -> ExitCode {
    let mut format = None;
    let mut file = None;
    let mut strict = false;
    let mut config_id = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--strict" => strict = true,
            "--config-id" => match value(args, &mut i, "--config-id") {
                Ok(v) => config_id = Some(v.to_string()),
                Err(e) => return usage_error(&e),
            },
            "--format" => match value(args, &mut i, "--format").and_then(parse_format) {
                Ok(f) => format = Some(f),
                Err(e) => return usage_error(&e),
            },
            other if other.starts_with('-') => {
                return usage_error(&format!("unknown check-config option {other:?}"));
            }
            path => {
                if file.replace(PathBuf::from(path)).is_some() {
                    return usage_error("check-config takes one file");
                }
            }
        }
        i += 1;
    }
    let Some(file) = file else {
        return usage_error("rvs check-config needs a FILE");
    };
    match rvs::load::admit(&file, format, config_id.as_deref(), strict) {
        Ok((l, _)) => {
            if !l.warnings.is_empty() {
                eprint!("{}", rvs_config::render_all(&l.warnings));
            }
            print!("{}", rvs::load::effective(&l));
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprint!("{text}");
            ExitCode::FAILURE
        }
    }
}

/// `rvs convert --to FORMAT FILE`.
fn convert(args: &[String]) -> ExitCode {
    let mut from = None;
    let mut to = None;
    let mut file = None;
    let mut lossy = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--lossy" => lossy = true,
            "--format" | "--from" => match value(args, &mut i, "--format").and_then(parse_format) {
                Ok(f) => from = Some(f),
                Err(e) => return usage_error(&e),
            },
            "--to" => match value(args, &mut i, "--to").and_then(parse_format) {
                Ok(f) => to = Some(f),
                Err(e) => return usage_error(&e),
            },
            other if other.starts_with('-') => {
                return usage_error(&format!("unknown convert option {other:?}"));
            }
            path => {
                if file.replace(PathBuf::from(path)).is_some() {
                    return usage_error("convert takes one file");
                }
            }
        }
        i += 1;
    }
    let (Some(to), Some(file)) = (to, file) else {
        return usage_error("rvs convert needs --to FORMAT and a FILE");
    };
    let loaded = match rvs::load::load(&file, from) {
        Ok(l) => l,
        Err(diags) => {
            eprint!("{}", rvs_config::render_all(&diags));
            return ExitCode::FAILURE;
        }
    };
    let c = rvs::load::convert(&loaded, to);
    let list = || {
        c.losses
            .iter()
            .map(|r| format!("  - {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if c.losses.is_empty() {
        print!("{}", c.text);
        ExitCode::SUCCESS
    } else if lossy {
        eprintln!(
            "rvs convert: {}: warning: written with --lossy; {} cannot express:\n{}",
            file.display(),
            to.name(),
            list()
        );
        print!("{}", c.text);
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "rvs convert: {}: {} cannot express:\n{}\n(nothing written; --lossy writes it without them)",
            file.display(),
            to.name(),
            list()
        );
        ExitCode::FAILURE
    }
}
