//! Connection-per-request steady state: the server's FIN must follow its response through
//! the director without a scheduling delay.
//!
//! A server answering `Connection: close` writes the response and closes microseconds
//! later: data, then FIN. The kernel's NAT forwards both in the sender's softirq. A
//! userspace director must be woken for each; under CPU contention an ordinary thread's
//! wake-up waits for the running task's slice (milliseconds), so the FIN could reach the
//! client long after the data. A client that reads the response and closes in between
//! closes first and keeps a TIME_WAIT socket for 60 s: a busy single client (wrk) then
//! runs out of ephemeral ports and falls to ~470 conn/s. rvs runs its data plane
//! `SCHED_FIFO` (like softirq, ahead of ordinary processes); this test puts CPU hogs on
//! the director's CPU and measures, in the client, how long after the response's last
//! byte the FIN arrives.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

/// Sequential HTTP/1.0 requests.
const REQUESTS: usize = 300;
/// The test's server closes this long after writing its response (nginx took ~20 µs
/// here): long enough that the director forwards the data alone and sleeps before the
/// FIN comes, so the FIN needs a wake-up of its own.
const SERVER_GAP: Duration = Duration::from_micros(200);
/// The port of the test's server (on rs1) and its virtual service.
const PORT: u16 = 8080;
/// Busy-looping processes sharing the director's CPU.
const HOGS: usize = 3;
/// The FIN may follow the last data segment by at most this much (90th percentile). An
/// ordinary-priority director on a CPU with hogs measured ms here; a real-time one
/// [`SERVER_GAP`] plus tens of microseconds.
const FIN_DELAY_P90: Duration = Duration::from_micros(1000);

/// Busy-looping threads of this process pinned to one CPU, each bounded to a minute;
/// dropping them stops them (they also end with the process).
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize, cpu: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    pin(tid(), cpu, false);
                    let end = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn pin(pid: u32, cpu: usize, all_threads: bool) {
    let mut cmd = Command::new("taskset");
    if all_threads {
        cmd.arg("-a");
    }
    let st = cmd
        .args(["-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .expect("taskset");
    assert!(st.status.success(), "taskset {pid}: {st:?}");
}

/// The calling thread's id (for taskset).
fn tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .expect("a thread id")
}

/// Serves `GET`s on `listener` until `stop`: each answered, then closed [`SERVER_GAP`]
/// later (other connections, e.g. health checks, just closed).
fn slow_closer(listener: &TcpListener, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let end = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            Err(e) => return Err(e),
        };
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut req = Vec::new();
        let mut chunk = [0u8; 512];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => req.extend_from_slice(&chunk[..n]),
            }
        }
        if req.windows(4).any(|w| w == b"\r\n\r\n") {
            s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")?;
            let t = Instant::now();
            while t.elapsed() < SERVER_GAP {
                std::hint::spin_loop();
            }
        }
    }
    Ok(())
}

/// One `GET / HTTP/1.0`: returns how long after the response's last byte the server's
/// FIN arrived (zero when it had arrived already).
fn fin_delay(addr: SocketAddr) -> io::Result<Duration> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let want = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed before the response was complete"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| io::Error::other("no Content-Length"))?;
        break end + 4 + len;
    };
    while buf.len() < want {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed inside the body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    // The response is complete: this is where a client like wrk closes.
    let done = Instant::now();
    match s.read(&mut chunk)? {
        0 => Ok(done.elapsed()),
        n => Err(io::Error::other(format!("{n} bytes after the response"))),
    }
}

#[test]
fn nat_fin_follows_the_response_under_cpu_contention() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cpus >= 2,
        "this test needs 2 CPUs (hogs beside the director, the client apart)"
    );
    let lab = lab(LabOptions {
        method: Method::Nat,
        ..LabOptions::default()
    });
    let stop = AtomicBool::new(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (mut delays, d) = std::thread::scope(|sc| {
        let server = sc.spawn(|| {
            lab.run("rs1", || {
                pin(tid(), 1, false);
                let l = TcpListener::bind(("0.0.0.0", PORT))?;
                let _ = ready_tx.send(());
                slow_closer(&l, &stop)
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the test's server listens");
        let d = Director::start(
            &lab,
            "lvs",
            &lvs_cf(
                Method::Nat,
                &[
                    Virtual::rr(lab::VIP.into(), 80, 3),
                    Virtual::rr(lab::VIP.into(), PORT, 1),
                ],
            ),
        );
        d.wait_http(lab::VIP.into());
        // The director and the hogs on CPU 0; the client and the server on CPU 1.
        pin(d.pid(), 0, true);
        let hogs = Hogs::start(HOGS, 0);
        std::thread::sleep(Duration::from_millis(200));
        let addr = SocketAddr::from((lab::VIP, PORT));
        let delays = lab
            .run("client", || {
                pin(tid(), 1, false);
                (0..REQUESTS)
                    .map(|_| fin_delay(addr))
                    .collect::<io::Result<Vec<_>>>()
            })
            .unwrap();
        drop(hogs);
        stop.store(true, Ordering::Relaxed);
        let served = server.join().expect("server thread");
        let delays = delays.unwrap_or_else(|e| panic!("request through the VIP: {e}\n{}", d.log()));
        served.unwrap().expect("the test's server");
        (delays, d)
    });
    delays.sort();
    let p = |q: usize| delays[(delays.len() - 1) * q / 100];
    eprintln!(
        "FIN after the response, {REQUESTS} requests: p50 {:?} p90 {:?} p99 {:?} max {:?}",
        p(50),
        p(90),
        p(99),
        delays[delays.len() - 1]
    );
    assert!(
        p(90) <= FIN_DELAY_P90,
        "the server's FIN reached the client {:?} (p90) after the response (limit \
         {FIN_DELAY_P90:?}): the data plane waited for the CPU\n{}",
        p(90),
        d.log()
    );
    d.stop();
}
