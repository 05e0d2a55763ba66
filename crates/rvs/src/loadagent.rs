//! `rvs realserver agent`: the real server's half of `load_monitor` (the docs' "load
//! feedback"). The director raises the weight of an idle real server and lowers it again as
//! the server gets busy; for that it asks each real server for its load average. This is the
//! small UDP responder that answers it.
//!
//! The protocol is one datagram each way. The director sends [`REQUEST`] (`rvs-load?`, nine
//! bytes, nothing else); the agent answers `rvs-load <load1> <load5> <load15>\n`, the first
//! three fields of `/proc/loadavg` as the kernel wrote them (ASCII digits with one decimal
//! point). Any other datagram gets no answer at all and is only counted, so the agent cannot
//! be talked into saying anything else; when the load file cannot be read or is not in
//! `/proc/loadavg`'s format the request is not answered either, and the director's query
//! times out as it would for a silent agent. The director's side parses the answer with
//! [`parse_reply`].
//!
//! What it deliberately does not do: authenticate the director (it answers whoever can reach
//! its address: bind it to the address the director uses, or filter the port), rate-limit,
//! or compute anything from the load: weights are the director's business.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rvs_core::health::{LoadMonitor, LoadReport};
use rvs_sys::poll::wait_readable;
use rvs_sys::rawsock::TermSignals;

/// The request datagram, exactly.
pub const REQUEST: &[u8] = b"rvs-load?";

/// The first word of a reply.
const REPLY_TAG: &str = "rvs-load";

/// Where the load averages are read from unless `--load-file` says otherwise.
pub const DEFAULT_LOAD_FILE: &str = "/proc/loadavg";

/// Longest load figure accepted (`/proc/loadavg` writes at most a few digits).
const MAX_NUMBER_LEN: usize = 16;

/// The agent's options (`rvs realserver agent`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AgentOptions {
    /// Where to listen (`[::]:5391` for IPv6; port 0 picks a free port, which the start-up
    /// line names).
    #[arg(long, value_name = "ADDR:PORT",
          default_value_t = SocketAddr::from((Ipv4Addr::UNSPECIFIED, LoadMonitor::AGENT_PORT)))]
    pub listen: SocketAddr,
    /// Read the load from PATH instead of /proc/loadavg (same format: three load averages
    /// first, separated by white space; for tests).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_LOAD_FILE)]
    pub load_file: PathBuf,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, LoadMonitor::AGENT_PORT)),
            load_file: PathBuf::from(DEFAULT_LOAD_FILE),
        }
    }
}

/// A load figure as `/proc/loadavg` writes it: ASCII digits with at most one decimal point,
/// starting with a digit. Signs, exponents, `NaN` and `inf` are refused, and so is anything
/// too long to be a load.
fn load_number(s: &str) -> Option<f32> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_NUMBER_LEN
        && b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && b.iter().filter(|c| **c == b'.').count() <= 1;
    if !ok {
        return None;
    }
    s.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// Parses an agent's answer `rvs-load <load1> <load5> <load15>\n` (the final newline may be
/// missing; nothing else may differ: single spaces, three figures in `/proc/loadavg`'s
/// format). `None` for anything else, negative, NaN and infinite figures included.
pub fn parse_reply(reply: &[u8]) -> Option<LoadReport> {
    let text = std::str::from_utf8(reply).ok()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut words = text.split(' ');
    if words.next()? != REPLY_TAG {
        return None;
    }
    let load1 = load_number(words.next()?)?;
    load_number(words.next()?)?;
    load_number(words.next()?)?;
    if words.next().is_some() {
        return None;
    }
    Some(LoadReport { load1 })
}

/// The answer for the contents of a load file in `/proc/loadavg`'s format (`0.52 0.58 0.59
/// 2/345 12345`): its first three fields as written. `None` when they are not three load
/// figures.
pub fn reply_for(loadavg: &str) -> Option<String> {
    let mut fields = loadavg.split_ascii_whitespace();
    let mut next = || fields.next().filter(|f| load_number(f).is_some());
    let (l1, l5, l15) = (next()?, next()?, next()?);
    Some(format!("{REPLY_TAG} {l1} {l5} {l15}\n"))
}

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Send this.
    Reply(String),
    /// Not [`REQUEST`]: no answer.
    BadRequest,
    /// A request, but the load could not be read: no answer.
    Unreadable(String),
}

/// Decides the answer to `datagram`; reads the load (with `read`) only for a request.
fn answer(datagram: &[u8], read: impl FnOnce() -> io::Result<String>) -> Answer {
    if datagram != REQUEST {
        return Answer::BadRequest;
    }
    match read() {
        Ok(text) => match reply_for(&text) {
            Some(r) => Answer::Reply(r),
            None => Answer::Unreadable(format!("not in /proc/loadavg's format: {text:?}")),
        },
        Err(e) => Answer::Unreadable(e.to_string()),
    }
}

/// What the agent did, logged when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counters {
    answered: u64,
    bad_requests: u64,
    unreadable: u64,
    send_errors: u64,
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "answered {}; bad requests {}; load unreadable {}; send errors {}",
            self.answered, self.bad_requests, self.unreadable, self.send_errors
        )
    }
}

/// Most datagrams taken per wake-up, so a flood cannot starve the signal descriptor.
const BATCH: usize = 64;

/// Runs the agent until SIGTERM or SIGINT (then `Ok`).
pub fn run(opts: &AgentOptions) -> Result<(), String> {
    // Before anything else, so a SIGTERM during setup is queued rather than fatal.
    let signals = TermSignals::new().map_err(|e| format!("signal setup: {e}"))?;
    let sock = UdpSocket::bind(opts.listen).map_err(|e| format!("bind {}: {e}", opts.listen))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("non-blocking socket: {e}"))?;
    let local = sock
        .local_addr()
        .map_err(|e| format!("socket address: {e}"))?;
    eprintln!(
        "rvs realserver agent: answering rvs-load? on {local} from {}",
        opts.load_file.display()
    );
    let mut counters = Counters::default();
    let stopped = serve(&signals, &sock, &opts.load_file, &mut counters);
    eprintln!("rvs realserver agent: {counters}");
    let signo = stopped?;
    eprintln!("rvs realserver agent: stopped by signal {signo}");
    Ok(())
}

/// The loop: answers requests until a signal arrives (returns its number).
fn serve(
    signals: &TermSignals,
    sock: &UdpSocket,
    load_file: &Path,
    counters: &mut Counters,
) -> Result<i32, String> {
    let fds = [signals.as_fd(), sock.as_fd()];
    let mut ready = [false; 2];
    // Larger than a request, so a longer datagram is never read as one.
    let mut buf = [0u8; 512];
    let mut last_error = String::new();
    loop {
        wait_readable(&fds, &mut ready, None).map_err(|e| format!("wait: {e}"))?;
        if ready[0]
            && let Some(signo) = signals.take().map_err(|e| format!("signalfd: {e}"))?
        {
            return Ok(signo);
        }
        if !ready[1] {
            continue;
        }
        for _ in 0..BATCH {
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("receive: {e}")),
            };
            match answer(&buf[..n], || std::fs::read_to_string(load_file)) {
                Answer::Reply(r) => match sock.send_to(r.as_bytes(), from) {
                    Ok(_) => counters.answered += 1,
                    Err(_) => counters.send_errors += 1,
                },
                Answer::BadRequest => counters.bad_requests += 1,
                Answer::Unreadable(why) => {
                    counters.unreadable += 1;
                    // Once per distinct error, not once per request.
                    if why != last_error {
                        eprintln!(
                            "rvs realserver agent: cannot read the load from {}: {why}",
                            load_file.display()
                        );
                        last_error = why;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_reply_gives_the_one_minute_load() {
        let r = parse_reply(b"rvs-load 0.52 1.25 12.00\n").unwrap();
        assert_eq!(r.load1, 0.52);
        assert_eq!(parse_reply(b"rvs-load 3 0 0").unwrap().load1, 3.0);
        assert_eq!(
            parse_reply(b"rvs-load 0.00 0.00 0.00\n").unwrap().load1,
            0.0
        );
    }

    #[test]
    fn garbage_replies_are_refused() {
        for bad in [
            &b""[..],
            b"\n",
            b"rvs-load?",
            b"rvs-load\n",
            b"rvs-load 0.5 0.5\n",
            b"rvs-load 0.5 0.5 0.5 0.5\n",
            b"rvs-load  0.5 0.5 0.5\n",
            b"rvs-load 0.5 0.5 0.5\n\n",
            b"rvs-load 0.5 0.5 0.5 \n",
            b"rvs-load\t0.5 0.5 0.5\n",
            b"RVS-LOAD 0.5 0.5 0.5\n",
            b"rvs-loadx 0.5 0.5 0.5\n",
            b"rvs-load 0.5 0.5 abc\n",
            b"rvs-load 1.2.3 0.5 0.5\n",
            b"rvs-load .5 0.5 0.5\n",
            b"rvs-load 0,5 0.5 0.5\n",
            b"rvs-load 1e3 0.5 0.5\n",
            b"rvs-load +1 0.5 0.5\n",
            b"rvs-load \xff 0.5 0.5\n",
            b"0.52 0.58 0.59 2/345 12345\n",
        ] {
            assert_eq!(parse_reply(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn negative_nan_and_infinite_loads_are_refused() {
        for bad in [
            &b"rvs-load -0.5 0.5 0.5\n"[..],
            b"rvs-load -0 0.5 0.5\n",
            b"rvs-load 0.5 -1 0.5\n",
            b"rvs-load NaN 0.5 0.5\n",
            b"rvs-load nan 0.5 0.5\n",
            b"rvs-load 0.5 0.5 NaN\n",
            b"rvs-load inf 0.5 0.5\n",
            b"rvs-load infinity 0.5 0.5\n",
            b"rvs-load 99999999999999999999999999999999999999999 0.5 0.5\n",
        ] {
            assert_eq!(parse_reply(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_reply_copies_the_first_three_fields_of_loadavg() {
        let r = reply_for("0.52 0.58 0.59 2/345 12345\n").unwrap();
        assert_eq!(r, "rvs-load 0.52 0.58 0.59\n");
        assert_eq!(parse_reply(r.as_bytes()).unwrap().load1, 0.52);
        assert_eq!(
            reply_for("1.00\t2.00  3.00").unwrap(),
            "rvs-load 1.00 2.00 3.00\n"
        );
        assert_eq!(reply_for("0.52 0.58"), None);
        assert_eq!(reply_for("0.52 -1 0.59 2/345 1"), None);
        assert_eq!(reply_for(""), None);
    }

    #[test]
    fn only_the_exact_request_is_answered_and_only_it_reads_the_load() {
        let load = || Ok("7.50 1.00 0.25 1/100 42\n".to_owned());
        assert_eq!(
            answer(REQUEST, load),
            Answer::Reply("rvs-load 7.50 1.00 0.25\n".to_owned())
        );
        let unread = || -> io::Result<String> { panic!("the load is read only for a request") };
        for bad in [
            &b"rvs-load?\n"[..],
            b"rvs-load",
            b"rvs-load??",
            b"",
            b"GET / HTTP/1.0",
        ] {
            assert_eq!(answer(bad, unread), Answer::BadRequest);
        }
        let missing = || Err(io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(answer(REQUEST, missing), Answer::Unreadable(_)));
        let garbage = || Ok("hello".to_owned());
        assert!(matches!(answer(REQUEST, garbage), Answer::Unreadable(_)));
    }

    #[test]
    fn options_default_to_the_agent_port_and_proc_loadavg() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: AgentOptions,
        }
        let parse = |s: &str| {
            <Cli as clap::Parser>::try_parse_from(
                std::iter::once("agent").chain(s.split_whitespace()),
            )
            .map(|c| c.o)
        };
        let o = parse("").unwrap();
        assert_eq!(o, AgentOptions::default());
        assert_eq!(o.listen, "0.0.0.0:5391".parse().unwrap());
        assert_eq!(o.load_file, PathBuf::from("/proc/loadavg"));
        let o = parse("--listen=[::1]:6000 --load-file /tmp/l").unwrap();
        assert_eq!(o.listen, "[::1]:6000".parse().unwrap());
        assert_eq!(o.load_file, PathBuf::from("/tmp/l"));
        assert_eq!(
            parse("--help").unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
        assert!(parse("--listen 127.0.0.1").is_err());
        assert!(parse("--listen").is_err());
        assert!(parse("--vip 10.0.0.1").is_err());
    }
}
