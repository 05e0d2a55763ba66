//! rvs: the Linux Virtual Server director in userspace.
#![forbid(unsafe_code)]

use std::process::ExitCode;

pub mod realserver;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("realserver") => realserver::main(&args[1..]),
        Some("--version" | "-V") => {
            println!("rvs {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "rvs {}: the director's commands (demo, daemon, check-config, lab, realserver) \
                 arrive with the data-plane and configuration work; see README.md",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}
