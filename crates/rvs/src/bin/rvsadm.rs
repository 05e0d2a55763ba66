//! `rvsadm`: ipvsadm 1.31's command line and output against a running `rvs daemon`.
//!
//! The command line is ipvsadm's (`rvs_config::ipvsadm::parse_command`): usage errors
//! are reported here, on stderr with ipvsadm's messages and exit statuses, before any
//! daemon is asked; `-h` prints ipvsadm's usage, `-v` ipvsadm's version line and then
//! rvs's version on a second line (`rvs::admin::version`). Everything
//! else goes to the daemon's control socket (wire format in `rvs::admin`), which answers
//! with what ipvsadm would print and its exit status. `-R` sends the rules read from
//! stdin.
//!
//! Host and service names are resolved here, as ipvsadm resolves them (`/etc/hosts` and
//! the resolver, `/etc/services` by the service's protocol): rvsadm sends the daemon
//! numbers, and without `-n` prints names into its listings and saves.
//!
//! rvsadm's own option: `--control PATH` (anywhere on the line, also `--control=PATH`)
//! names the daemon's control socket; without it `RVS_CONTROL`, else the one daemon
//! running (its live socket in `RVS_RUN_DIR`, default `/run/rvs`; see `rvs::locate`).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn exit(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut control = None;
    let mut args = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let a = &raw[i];
        if i > 0 && a == "--control" {
            let Some(v) = raw.get(i + 1) else {
                eprintln!("--control: missing argument");
                return exit(255);
            };
            control = Some(PathBuf::from(v));
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix("--control=").filter(|_| i > 0) {
            control = Some(PathBuf::from(v));
        } else {
            args.push(a.clone());
        }
        i += 1;
    }
    if args.is_empty() {
        args.push("rvsadm".into());
    }
    let program = args[0].clone();

    let names = rvs::names::SystemNames;
    let (command, args) = rvs_config::ipvsadm::numeric_args(&args, &names);
    let command = match command {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.message);
            return exit(e.exit_code);
        }
    };
    let mut stdin = String::new();
    match command {
        rvs_config::Command::Help => {
            print!("{}", rvs::admin::usage(&program));
            return ExitCode::SUCCESS;
        }
        rvs_config::Command::Version => {
            print!("{}", rvs::admin::version(&program));
            return ExitCode::SUCCESS;
        }
        rvs_config::Command::Restore => {
            if let Err(e) = std::io::stdin().read_to_string(&mut stdin) {
                eprintln!("{program}: reading rules from stdin: {e}");
                return exit(1);
            }
            stdin = rvs_config::ipvsadm::numeric_rules(&stdin, &names);
        }
        _ => {}
    }
    let control = match rvs::locate::control_socket(control) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{program}: {e}");
            return exit(1);
        }
    };
    match rvs::admin::request(&control, &args, &stdin) {
        Ok(mut reply) => {
            rvs::admin::name_reply(&command, &mut reply, &names);
            let _ = std::io::stdout().write_all(reply.stdout.as_bytes());
            let _ = std::io::stderr().write_all(reply.stderr.as_bytes());
            exit(reply.code)
        }
        Err(e) => {
            eprintln!(
                "Can't reach the rvs daemon at {}: {e}\n\
                 Are you sure that `rvs daemon` is running? Name its control socket with \
                 --control PATH or RVS_CONTROL.",
                control.display()
            );
            exit(1)
        }
    }
}
