//! rvs: the Linux Virtual Server director in userspace.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

use clap::{CommandFactory, Parser};
use cli::{CheckConfigArgs, Cli, Command, ControlArgs, ConvertArgs, DaemonArgs, ListArgs};

fn main() -> ExitCode {
    // Usage errors: clap's message on stderr, exit 2; --help/--version: stdout, exit 0.
    let cli = Cli::parse();
    match cli.command {
        Command::Daemon(a) => daemon(&a),
        Command::List(a) => list(&a),
        Command::Reload(a) => reload(a),
        Command::DrainDirector(a) => rvs::announce::cli(a.control, "drain-director"),
        Command::UndrainDirector(a) => rvs::announce::cli(a.control, "undrain-director"),
        Command::CheckConfig(a) => check_config(a),
        Command::Convert(a) => convert(a),
        Command::Realserver(c) => rvs::realserver::main(c),
        Command::Demo(a) => rvs_lab::demo::main(&a),
        Command::Lab(a) => rvs_lab::lab::main(a),
        Command::Httpd(a) => rvs_lab::httpd::main(&a),
        Command::Console(a) => rvs_console::main(a, rvs::console::connect),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rvs", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir } => man(dir),
    }
}

/// `rvs man [DIR]`: rvs(1) to stdout, or every page into DIR.
fn man(dir: Option<PathBuf>) -> ExitCode {
    // No page for clap's `help` command: `rvs help X` is `rvs X --help`.
    let cmd = Cli::command().disable_help_subcommand(true);
    let result = match &dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
        Some(d) => clap_mangen::generate_to(cmd, d),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let to = dir.map_or("stdout".to_owned(), |d| d.display().to_string());
            eprintln!("rvs man: {to}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn daemon(a: &DaemonArgs) -> ExitCode {
    let opts = a.options();
    let config = &opts.config_path;
    if let Err(e) = rvs::logging::init(a.log_format, a.log_level.as_deref()) {
        eprintln!("rvs daemon: {e}");
        return ExitCode::from(2);
    }
    let (loaded, marks) =
        match rvs::load::admit(config, opts.format, opts.config_id.as_deref(), opts.strict) {
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
    opts.tuning.apply(&mut plan.config);
    let mut failover = loaded.failover.clone();
    if a.active_active
        && let Err(e) = rvs::announce::force_active_active(&mut failover)
    {
        eprintln!("rvs daemon: {e}");
        return ExitCode::FAILURE;
    }
    match rvs::daemon::run(plan, loaded.health.clone(), failover, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(a: &ListArgs) -> ExitCode {
    let opts = a.words();
    let control = match rvs::locate::control_socket(a.control.control.clone()) {
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

fn reload(a: ControlArgs) -> ExitCode {
    let control = match rvs::locate::control_socket(a.control) {
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

/// `rvs check-config`: parse and validate; print the effective configuration as ipvsadm
/// rules, and what ipvsadm cannot express as `#` comments.
fn check_config(a: CheckConfigArgs) -> ExitCode {
    let CheckConfigArgs { source, file } = a;
    match rvs::load::admit(
        &file,
        source.format,
        source.config_id.as_deref(),
        source.strict,
    ) {
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
fn convert(a: ConvertArgs) -> ExitCode {
    let ConvertArgs {
        to,
        format: from,
        lossy,
        file,
    } = a;
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
