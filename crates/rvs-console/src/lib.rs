//! `rvs console`: the web console, Piranha Configuration Tool's successor (issue 14).
//!
//! Its own process: it talks to a running `rvs daemon` only over the daemon's control
//! socket (through a [`Control`] the `rvs` binary hands it, built on `rvs::daemon` and
//! `rvs::admin`'s client code), never runs a command. What is built so far:
//! - `rvs console passwd USER [--role viewer|operator|admin]` and `rvs console token NAME`
//!   ([`users`]): the argon2id users file, API tokens stored as SHA-256 digests. The
//!   console refuses to start without a user.
//! - The server ([`web`]): login page and session cookie, CSRF token and Origin check on
//!   every state-changing request, login rate limit, body limit, strict CSP ([`auth`]);
//!   the live page (askama templates, Server-Sent Events, vendored vanilla JS); the JSON
//!   API and CSV export; operator actions per real server (ready, drain, maintenance,
//!   weight) through rvsadm's edit path ([`daemon`]); the append-only audit log
//!   ([`audit`], also sent to the daemon's log); configuration editing as text: validate,
//!   diff, apply with conflict refusal, kept versions and rollback ([`config`]), per
//!   Piranha panel for lvs.cf ([`panels`]), per object for keepalived.conf ([`kaforms`])
//!   and rvs's TOML ([`tomlforms`]); user and token management for admins (the users
//!   page); flushing a real server's connections; the
//!   peer director's panel ([`peer`]); what the console took out of the table kept in a
//!   state file across restarts.
//!
//! docs/console.md describes the roles, TLS, the routes and what is not built yet.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod config;
pub mod daemon;
pub mod kaforms;
pub mod panels;
pub mod peer;
mod time;
mod tls;
pub mod tomlforms;
pub mod users;
pub mod web;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The default listening address: Piranha's port, loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3636";
/// The default users file.
pub const DEFAULT_USERS: &str = "/etc/rvs/console.users";
/// The default directory of kept configuration versions.
pub const DEFAULT_VERSIONS: &str = "/var/lib/rvs/console-versions";
/// The default audit log.
pub const DEFAULT_AUDIT: &str = "/var/log/rvs/console-audit.log";

/// `rvs console`'s command line.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// `passwd` or `token`; without one, serve the console.
    #[command(subcommand)]
    pub command: Option<ConsoleCommand>,
    /// The server's options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `rvs console`'s subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConsoleCommand {
    /// Set a console user's password (argon2id) and role: Piranha's `piranha-passwd`.
    ///
    /// The password is read from the terminal without echo, or as the first line of
    /// standard input when that is not a terminal; `--generate` makes a random one and
    /// prints it. The users file is rewritten atomically, mode 0600.
    Passwd(PasswdArgs),
    /// Create an API token with a role; it is printed once and stored only as its SHA-256
    /// digest. Scripts send it as `Authorization: Bearer TOKEN`.
    Token(TokenArgs),
}

/// `rvs console passwd`.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswdArgs {
    /// The user (letters, digits, `.`, `_`, `-`; at most 64).
    pub user: String,
    /// What the user may do: viewer (read only), operator (drain, ready, maintenance,
    /// weight), admin (everything).
    #[arg(long, default_value = "viewer")]
    pub role: users::Role,
    /// Make a random password and print it.
    #[arg(long)]
    pub generate: bool,
    /// The users file.
    #[arg(long, default_value = DEFAULT_USERS)]
    pub users: PathBuf,
}

/// `rvs console token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The token's name (shown in the audit log as `token:NAME`).
    pub name: String,
    /// The token's role.
    #[arg(long, default_value = "viewer")]
    pub role: users::Role,
    /// The users file.
    #[arg(long, default_value = DEFAULT_USERS)]
    pub users: PathBuf,
}

/// `rvs console`'s server options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on. An address other than loopback requires TLS
    /// (--cert and --key).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// The users file written by `rvs console passwd`; the console refuses to start
    /// without a user in it.
    #[arg(long, default_value = DEFAULT_USERS)]
    pub users: PathBuf,
    /// The append-only audit log (JSON lines).
    #[arg(long, default_value = DEFAULT_AUDIT)]
    pub audit: PathBuf,
    /// The daemon's control socket (else $RVS_CONTROL, else the one running daemon's).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// The daemon's configuration file, to edit from the console (admin); without it
    /// the configuration pages are off.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where previous versions of the configuration file are kept.
    #[arg(long, default_value = DEFAULT_VERSIONS)]
    pub config_versions: PathBuf,
    /// Where the console keeps what it took out of the table (maintenance, drains,
    /// deactivated services) across restarts (default: console-state.json beside the
    /// audit log).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The peer (backup) director's console, `https://HOST:PORT` (or `http://` on a
    /// trusted link): the peer panel shows its state and copies the configuration to it.
    #[arg(long, requires = "peer_token_file")]
    pub peer: Option<String>,
    /// A file holding an API token of the peer's console (admin role there).
    #[arg(long)]
    pub peer_token_file: Option<PathBuf>,
    /// The certificates (PEM) to trust for an https peer.
    #[arg(long)]
    pub peer_ca: Option<PathBuf>,
    /// Seconds between live updates of the page (1 to 3600).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// A session ends after this many seconds without a request.
    #[arg(long, default_value_t = 900)]
    pub idle_timeout: u64,
    /// A session ends this many seconds after login, used or not.
    #[arg(long, default_value_t = 12 * 3600)]
    pub session_lifetime: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            listen: DEFAULT_LISTEN.parse().expect("a socket address"),
            cert: None,
            key: None,
            users: DEFAULT_USERS.into(),
            audit: DEFAULT_AUDIT.into(),
            control: None,
            config: None,
            config_versions: DEFAULT_VERSIONS.into(),
            state: None,
            peer: None,
            peer_token_file: None,
            peer_ca: None,
            interval: 2,
            idle_timeout: 900,
            session_lifetime: 12 * 3600,
        }
    }
}

impl ServeArgs {
    /// The state file: `--state`, else `console-state.json` beside the audit log.
    pub fn state_file(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| self.audit.with_file_name("console-state.json"))
    }
}

/// What an ipvsadm command line got from the daemon: what ipvsadm would print and return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsadmReply {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The way to the daemon: its control socket's two requests. The `rvs` binary implements
/// it with `rvs::daemon::control_request` and `rvs::admin::request`; tests with a fake.
pub trait Control: Send + Sync + 'static {
    /// One control request line (`list --health`, `list --failover`): the answer text.
    fn request(&self, line: &str) -> io::Result<String>;
    /// An ipvsadm command line (`args[0]` is the program name).
    fn ipvsadm(&self, args: &[String]) -> io::Result<IpvsadmReply>;
    /// Check a configuration file as `rvs check-config` does: its effective
    /// configuration, or the diagnostics (file:line:column) and the reason it is refused.
    fn check_config(&self, path: &std::path::Path) -> Result<String, String> {
        let _ = path;
        Err("configuration checks are not available".into())
    }
}

/// `rvs console [passwd|token]`: `connect` finds the control socket (from `--control`,
/// `RVS_CONTROL` or the running daemon) and makes the [`Control`].
pub fn main(
    args: Args,
    connect: impl FnOnce(Option<PathBuf>) -> Result<Arc<dyn Control>, String>,
) -> ExitCode {
    match args.command {
        Some(ConsoleCommand::Passwd(p)) => match users::passwd(&p) {
            Ok(msg) => {
                print!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rvs console passwd: {e}");
                ExitCode::FAILURE
            }
        },
        Some(ConsoleCommand::Token(t)) => match users::token(&t) {
            Ok(msg) => {
                print!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rvs console token: {e}");
                ExitCode::FAILURE
            }
        },
        None => {
            let control = match connect(args.serve.control.clone()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("rvs console: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match web::run(&args.serve, control) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rvs console: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
