//! `rvs demo --failover`: two directors in the namespace lab, each an `rvs daemon` on a
//! keepalived.conf — VRRP version 3 with 100 ms adverts, priorities 150 and 100, connection
//! sync on eth0 — in front of three real servers (NAT). The client keeps keep-alive
//! connections busy and opens new ones through the VIP; the master is killed with SIGKILL
//! half-way; the demo shows how long the client waited for the backup, that every
//! keep-alive connection went on with the same real server, and the backup's listing.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::lab::{self, Lab, LabOptions, Method};

/// Keep-alive connections held open across the takeover.
const KEEPALIVE: usize = 10;

/// Traffic before the kill, and after it.
const BEFORE: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(4);

/// How long the VIP (and the backup's BACKUP state) may take to appear.
const READY_LIMIT: Duration = Duration::from_secs(15);

/// The keepalived.conf of one director: VRRP owns the VIP and the NAT router's address;
/// `lvs_sync_daemon` follows the instance.
pub(crate) fn keepalived_conf(priority: u8, real_servers: usize) -> String {
    let mut s = format!(
        "# rvs demo --failover: director with VRRP priority {priority}\n\
         global_defs {{\n  lvs_sync_daemon eth0 VI_1\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  version 3\n  advert_int 0.1\n  virtual_ipaddress {{\n    \
         {vip}/24 dev eth0\n    {router}/24 dev eth1\n  }}\n}}\n\
         virtual_server {vip} 80 {{\n  lvs_sched wlc\n  lvs_method NAT\n  protocol TCP\n",
        vip = lab::VIP,
        router = lab::NAT_ROUTER,
    );
    for i in 1..=real_servers {
        s += &format!(
            "  real_server {} 80 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n    }}\n  }}\n",
            lab::rs_addr(i)
        );
    }
    s.push_str("}\n");
    s
}

/// One director of the pair.
struct Node {
    node: &'static str,
    pid: u32,
    control: PathBuf,
}

pub(crate) fn run(real_servers: usize, keep: bool) -> io::Result<()> {
    println!("building the lab ({real_servers} real servers, NAT, two directors)...");
    let lab = Lab::up(LabOptions {
        name_prefix: "demo".into(),
        method: Method::Nat,
        real_servers,
        backup_director: true,
        ..LabOptions::default()
    })?;
    print!("{}", lab.info().describe());
    let master = start(&lab, "director", "keepalived-master", 150, real_servers)?;
    let backup = start(&lab, "director2", "keepalived-backup", 100, real_servers)?;
    wait(&lab, &master, "the VIP to answer", || {
        lab.run("client", || get_new(Duration::from_millis(300)).is_ok())
            .unwrap_or(false)
    })?;
    wait(&lab, &backup, "the second director to stand by", || {
        lab.log_text(backup.pid).contains("state=BACKUP")
    })?;
    println!(
        "\n{} is MASTER (priority 150) and serves {}:80; {} is BACKUP (priority 100)",
        master.node,
        lab::VIP,
        backup.node
    );

    let stop = AtomicBool::new(false);
    let outcome = lab.run("client", || -> io::Result<Outcome> {
        let mut conns = Vec::new();
        for _ in 0..KEEPALIVE {
            let s = TcpStream::connect_timeout(&vip(), Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(8)))?;
            let mut c = KeepAlive {
                reader: BufReader::new(s.try_clone()?),
                stream: s,
                first: String::new(),
            };
            c.first = c.get()?;
            conns.push(c);
        }
        let ports: Vec<u16> = conns
            .iter()
            .filter_map(|c| c.stream.local_addr().ok())
            .map(|a| a.port())
            .collect();
        let mut before: BTreeMap<String, usize> = BTreeMap::new();
        for c in &conns {
            *before.entry(c.first.clone()).or_default() += 1;
        }
        println!(
            "opened {KEEPALIVE} keep-alive connections through the VIP ({})",
            fmt_spread(&before)
        );
        thread::scope(|sc| {
            let held: Vec<_> = conns
                .into_iter()
                .map(|mut c| {
                    let stop = &stop;
                    sc.spawn(move || -> (Result<usize, String>, KeepAlive) {
                        let mut n = 0;
                        while !stop.load(Ordering::Relaxed) {
                            match c.get() {
                                Ok(name) if name == c.first => n += 1,
                                Ok(name) => {
                                    let e = format!("moved from {} to {name}", c.first);
                                    return (Err(e), c);
                                }
                                Err(e) => return (Err(format!("{} lost: {e}", c.first)), c),
                            }
                            thread::sleep(Duration::from_millis(20));
                        }
                        (Ok(n), c)
                    })
                })
                .collect();
            let fresh = sc.spawn(|| {
                let (mut ok, mut failed) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    match get_new(Duration::from_millis(200)) {
                        Ok(_) => ok += 1,
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            });
            thread::sleep(BEFORE);
            let synced = established(&backup.control, &ports);
            println!(
                "{} holds {synced} of {KEEPALIVE} keep-alive connections in its table (connection sync)",
                backup.node
            );
            println!("\nkill -9 {} (pid {}) under traffic...", master.node, master.pid);
            let killed = Instant::now();
            lab.kill(master.pid)?;
            let takeover = loop {
                if TcpStream::connect_timeout(&vip(), Duration::from_millis(20)).is_ok() {
                    break Some(killed.elapsed());
                }
                if killed.elapsed() > AFTER {
                    break None;
                }
            };
            thread::sleep(AFTER.saturating_sub(killed.elapsed()));
            stop.store(true, Ordering::Relaxed);
            let (held, open): (Vec<Result<usize, String>>, Vec<KeepAlive>) = held
                .into_iter()
                .filter_map(|h| h.join().ok())
                .unzip();
            let (ok, failed) = fresh.join().unwrap_or((0, 0));
            // The backup's listing while the keep-alive connections are still open.
            let listing = crate::listing(&backup.control, &[])
                .unwrap_or_else(|e| format!("(the backup's listing: {e})\n"));
            drop(open);
            Ok(Outcome {
                listing,
                synced,
                takeover,
                held,
                fresh: (ok, failed),
            })
        })
    })??;

    match outcome.takeover {
        Some(t) => println!(
            "{} took over: the client's first new connection went through {:.0} ms after the kill",
            backup.node,
            t.as_secs_f64() * 1e3
        ),
        None => println!("no takeover within {AFTER:?}"),
    }
    let survived = outcome.held.iter().filter(|h| h.is_ok()).count();
    println!(
        "keep-alive connections: {survived} of {KEEPALIVE} still answering, each from the same real server"
    );
    for e in outcome.held.iter().filter_map(|h| h.as_ref().err()) {
        println!("  {e}");
    }
    println!(
        "new connections during the run: {} answered, {} failed (those sent to the dead master)",
        outcome.fresh.0, outcome.fresh.1
    );
    println!(
        "\n$ rvs list --control {} -n   # on {}",
        backup.control.display(),
        backup.node
    );
    print!("{}", outcome.listing);
    if keep {
        let info = lab.detach()?;
        println!(
            "\nlab {0} and {1} (pid {2}) keep running;\n\
             client: rvs lab exec --name {0} client -- curl -s http://{3}/\n\
             remove it with: rvs lab down --name {0}",
            info.name,
            backup.node,
            backup.pid,
            lab::VIP
        );
    } else {
        drop(lab);
        println!("\nlab removed");
    }
    if outcome.takeover.is_none() || survived < KEEPALIVE || outcome.synced < KEEPALIVE {
        return Err(io::Error::other(format!(
            "failover incomplete: takeover {:?}, {} of {KEEPALIVE} connections synced, {survived} survived",
            outcome.takeover, outcome.synced
        )));
    }
    Ok(())
}

struct Outcome {
    listing: String,
    synced: usize,
    takeover: Option<Duration>,
    held: Vec<Result<usize, String>>,
    fresh: (usize, usize),
}

/// Writes the director's configuration and starts its daemon.
fn start(
    lab: &Lab,
    node: &'static str,
    name: &str,
    priority: u8,
    real_servers: usize,
) -> io::Result<Node> {
    let wd = lab.info().workdir();
    let cf = wd.join(format!("{name}.conf"));
    let conf = keepalived_conf(priority, real_servers);
    std::fs::write(&cf, &conf)?;
    println!("\n{node}: {}\n{conf}", cf.display());
    let control = wd.join(format!("{name}.ctl"));
    let exe = std::env::current_exe()?;
    let pid = lab.spawn(
        node,
        &exe,
        [
            "daemon".as_ref(),
            "-c".as_ref(),
            cf.as_os_str(),
            "--control".as_ref(),
            control.as_os_str(),
        ],
    )?;
    println!("started rvs daemon (pid {pid}) in {node}");
    Ok(Node { node, pid, control })
}

/// Waits (bounded) for `ready`; fails with the daemon's output if it exits or times out.
fn wait(lab: &Lab, d: &Node, what: &str, ready: impl Fn() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        if let Some(status) = lab.try_wait(d.pid)? {
            return Err(io::Error::other(format!(
                "rvs daemon in {} exited ({status}) waiting for {what}:\n{}",
                d.node,
                lab.log_tail(d.pid)
            )));
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "waited {READY_LIMIT:?} for {what}; {} output:\n{}",
                    d.node,
                    lab.log_tail(d.pid)
                ),
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn vip() -> SocketAddr {
    SocketAddr::from((lab::VIP, 80))
}

/// Established connections from the client's `ports` in a director's table.
fn established(control: &Path, ports: &[u16]) -> usize {
    let from: Vec<String> = ports
        .iter()
        .map(|p| format!("{}:{p} ", lab::CLIENT))
        .collect();
    crate::listing(control, &["-c"])
        .map(|t| {
            t.lines()
                .filter(|l| l.contains("ESTABLISHED") && from.iter().any(|f| l.contains(f)))
                .count()
        })
        .unwrap_or(0)
}

fn fmt_spread(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /` on a new connection; the real server's name.
fn get_new(timeout: Duration) -> io::Result<String> {
    let s = TcpStream::connect_timeout(&vip(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let mut c = KeepAlive {
        reader: BufReader::new(s.try_clone()?),
        stream: s,
        first: String::new(),
    };
    c.get()
}

/// An HTTP/1.1 keep-alive connection to the VIP.
struct KeepAlive {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The real server that answered first.
    first: String,
}

impl KeepAlive {
    /// `GET /` on this connection; the body (the real server's name).
    fn get(&mut self) -> io::Result<String> {
        self.stream
            .write_all(b"GET / HTTP/1.1\r\nHost: rvs-demo\r\n\r\n")?;
        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!("reply {:?}", status.trim_end())));
        }
        let mut len = None;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let len = len.ok_or_else(|| io::Error::other("reply without Content-Length"))?;
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body)?;
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }
}
