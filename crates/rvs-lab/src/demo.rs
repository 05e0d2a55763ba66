//! `rvs demo`: builds the namespace lab, writes an `lvs.cf` for the chosen forwarding
//! method, runs `rvs daemon` in the director's namespace, sends HTTP requests from the
//! client to the VIP and shows which real servers answered — then removes everything
//! (unless `--keep`).
//!
//! It drives the daemon only through its command line (`rvs daemon -c FILE --pid-file P`)
//! and the network; the `ipvsadm -L -n` listing comes from the daemon's control socket once
//! [`listing`] is wired to it, and until then is rebuilt from the configuration and marked
//! as such.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use crate::lab::{self, Lab, LabInfo, LabOptions, Method};

/// How long the VIP may take to answer after the daemon starts.
const READY_LIMIT: Duration = Duration::from_secs(15);
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// `rvs demo`'s command line.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The forwarding method (default nat); `--failover` runs NAT only.
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// How many HTTP requests the client sends through the VIP (not with --failover).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = positive)]
    pub requests: usize,
    /// How many real servers (1..=200).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = real_servers)]
    pub real_servers: usize,
    /// Leave the lab and the daemon running at the end (remove them with `rvs lab down`).
    #[arg(long)]
    pub keep: bool,
    /// Two directors (VRRP + connection sync): the master is killed under traffic and the
    /// backup takes over with every open connection.
    #[arg(long)]
    pub failover: bool,
    /// After the requests, serve the web console (`rvs console`) on 127.0.0.1:3636 with a
    /// one-time admin password, requests trickling through the VIP, until Ctrl-C.
    #[arg(long)]
    pub console: bool,
}

fn positive(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|&n: &usize| n > 0)
        .ok_or_else(|| "a positive number".to_owned())
}

fn real_servers(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| (1..=lab::MAX_REAL_SERVERS).contains(n))
        .ok_or_else(|| format!("a number in 1..={}", lab::MAX_REAL_SERVERS))
}

/// `rvs demo ...`: exit 0 when the demo ran and every request was answered, 1 otherwise,
/// 2 for `--failover` with a method other than NAT.
pub fn main(args: &DemoArgs) -> ExitCode {
    if args.failover && args.method.is_some_and(|m| m != Method::Nat) {
        eprintln!("rvs demo: --failover runs a NAT cluster; --method cannot be changed");
        return ExitCode::from(2);
    }
    if args.failover && args.console {
        eprintln!("rvs demo: --console runs with the single-director demo, not --failover");
        return ExitCode::from(2);
    }
    let result = if args.failover {
        crate::demo_failover::run(args.real_servers, args.keep)
    } else {
        run(
            args.method.unwrap_or(Method::Nat),
            args.requests,
            args.real_servers,
            args.keep,
            args.console,
        )
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    method: Method,
    requests: usize,
    real_servers: usize,
    keep: bool,
    console: bool,
) -> io::Result<()> {
    println!(
        "building the lab ({} real servers, method {})...",
        real_servers,
        method.as_str()
    );
    let lab = Lab::up(LabOptions {
        name_prefix: "demo".into(),
        method,
        real_servers,
        ..LabOptions::default()
    })?;
    print!("{}", lab.info().describe());

    let workdir = lab.info().workdir();
    let cf = workdir.join("lvs.cf");
    let config = lvs_cf(method, real_servers);
    fs::write(&cf, &config)?;
    println!("\nconfiguration {}:\n{config}", cf.display());

    let pid_file = workdir.join("rvs-daemon.pid");
    let control = workdir.join("rvs.ctl");
    let exe = std::env::current_exe()?;
    let daemon = lab.spawn(
        "director",
        &exe,
        [
            "daemon".as_ref(),
            "-c".as_ref(),
            cf.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            "--control".as_ref(),
            control.as_os_str(),
        ],
    )?;
    println!(
        "started rvs daemon (pid {daemon}) in {}",
        ns(lab.info(), "director")
    );

    wait_for_vip(&lab, daemon, &pid_file)?;
    println!(
        "the VIP {}:80 answers; sending {requests} requests from the client",
        lab::VIP
    );

    let (spread, failed) = lab.run("client", move || spread(requests))?;
    let line: Vec<String> = spread.iter().map(|(rs, n)| format!("{rs}: {n}")).collect();
    println!(
        "\n{}{}",
        line.join(", "),
        if failed > 0 {
            format!(", failed: {failed}")
        } else {
            String::new()
        }
    );

    println!("\n$ rvs list --control {} -n", control.display());
    match crate::listing(&control, &[]) {
        Ok(l) => print!("{l}"),
        Err(e) => eprintln!("rvs demo: the daemon's listing: {e}"),
    }

    if console {
        crate::demo_console::serve(&lab, &exe, &control, &cf)?;
    }

    if keep {
        let info = lab.detach()?;
        println!(
            "\nlab {0} and the daemon (pid {daemon}) keep running;\n\
             client: rvs lab exec --name {0} client -- curl -s http://{1}/\n\
             remove it with: rvs lab down --name {0}",
            info.name,
            lab::VIP
        );
    } else {
        lab.stop(daemon)?;
        drop(lab);
        println!("\nlab removed");
    }
    if failed > 0 {
        return Err(io::Error::other(format!(
            "{failed} of {requests} requests failed"
        )));
    }
    Ok(())
}

fn ns<'a>(info: &'a LabInfo, node: &str) -> &'a str {
    info.namespace(node).unwrap_or("?")
}

/// The demo's `lvs.cf` (Piranha format; `fullnat` with its two keys is the rvs extension).
pub fn lvs_cf(method: Method, real_servers: usize) -> String {
    let network = match method {
        Method::Nat => "nat",
        Method::Dr => "direct",
        Method::Tun => "tunnel",
        Method::FullNat => "fullnat",
    };
    let mut s = format!(
        "# rvs demo: {} real servers behind {}:80, method {}\n\
         serial_no = 1\nprimary = {}\nservice = lvs\nnetwork = {network}\n",
        real_servers,
        lab::VIP,
        method.as_str(),
        lab::DIRECTOR_PUB
    );
    match method {
        Method::Nat => {
            let _ = writeln!(s, "nat_router = {} eth1:1", lab::NAT_ROUTER);
        }
        Method::FullNat => {
            let _ = writeln!(
                s,
                "fullnat_local = {}\nfullnat_ports = 20000-60000",
                lab::FULLNAT_LOCAL
            );
        }
        Method::Dr | Method::Tun => {}
    }
    let _ = write!(
        s,
        "virtual http {{\n    address = {} eth0:1\n    active = 1\n    port = 80\n    \
         protocol = tcp\n    scheduler = wlc\n    send = \"GET / HTTP/1.0\\r\\n\\r\\n\"\n    \
         expect = \"HTTP\"\n    timeout = 6\n    reentry = 15\n",
        lab::VIP
    );
    for i in 1..=real_servers {
        let _ = write!(
            s,
            "    server rs{i} {{\n        address = {}\n        active = 1\n        weight = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    s.push_str("}\n");
    s
}

/// Waits (bounded) until an HTTP request to the VIP from the client is answered; fails
/// early, with the daemon's last output, if the daemon exits (unless it exited 0 after
/// writing its pid file: it went to the background, and the lab ends it with the
/// director's namespace).
fn wait_for_vip(lab: &Lab, daemon: u32, pid_file: &std::path::Path) -> io::Result<()> {
    let deadline = Instant::now() + READY_LIMIT;
    let mut backgrounded = false;
    loop {
        if !backgrounded && let Some(status) = lab.try_wait(daemon)? {
            if !(status.success() && pid_file.exists()) {
                return Err(io::Error::other(format!(
                    "rvs daemon exited ({status}) before the VIP answered:\n{}",
                    lab.log_tail(daemon)
                )));
            }
            backgrounded = true;
        }
        if lab.run("client", || get(Duration::from_millis(500)).is_ok())? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the VIP {}:80 did not answer within {READY_LIMIT:?}; daemon output:\n{}",
                    lab::VIP,
                    lab.log_tail(daemon)
                ),
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// One `GET /` to the VIP on a new connection; the body (the real server's name).
pub(crate) fn get(timeout: Duration) -> io::Result<String> {
    let addr = SocketAddr::from((lab::VIP, 80));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: rvs-demo\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("reply without a header end"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(io::Error::other(format!("reply {:?}", head.lines().next())));
    }
    Ok(body.trim().to_owned())
}

/// Sends `n` requests, each on its own connection; counts answers per real server.
fn spread(n: usize) -> (BTreeMap<String, usize>, usize) {
    let mut by_rs = BTreeMap::new();
    let mut failed = 0;
    for _ in 0..n {
        match get(IO_TIMEOUT) {
            Ok(name) => *by_rs.entry(name).or_insert(0) += 1,
            Err(_) => failed += 1,
        }
    }
    (by_rs, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvs_cf_per_method() {
        let nat = lvs_cf(Method::Nat, 3);
        assert!(nat.contains("network = nat\n"));
        assert!(nat.contains("nat_router = 10.2.0.254 eth1:1\n"));
        assert!(nat.contains("address = 10.1.0.100 eth0:1\n"));
        assert!(nat.contains("server rs3 {\n        address = 10.2.0.13\n"));
        assert_eq!(nat.matches('{').count(), nat.matches('}').count());

        let full = lvs_cf(Method::FullNat, 2);
        assert!(full.contains(
            "network = fullnat\nfullnat_local = 10.2.0.250\nfullnat_ports = 20000-60000\n"
        ));
        assert!(!full.contains("nat_router"));
        assert!(!full.contains("server rs3"));

        assert!(lvs_cf(Method::Dr, 1).contains("network = direct\n"));
        assert!(lvs_cf(Method::Tun, 1).contains("network = tunnel\n"));
    }
}
