//! `rvs demo --console`: after the demo's requests, the web console (`rvs console`, its
//! own process in the host's namespace on 127.0.0.1:3636) over the demo's daemon, with a
//! one-time admin password made by `rvs console passwd --generate`, and a trickle of
//! requests through the VIP so the live table moves, until SIGINT or SIGTERM.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::lab::Lab;

/// Where the demo's console listens.
pub(crate) const CONSOLE: &str = "127.0.0.1:3636";

/// Serve the console over the daemon at `control` (configuration `cf`) until
/// interrupted.
pub(crate) fn serve(lab: &Lab, exe: &Path, control: &Path, cf: &Path) -> io::Result<()> {
    let wd = lab.info().workdir();
    let users = wd.join("console.users");
    let out = Command::new(exe)
        .args([
            "console",
            "passwd",
            "admin",
            "--role",
            "admin",
            "--generate",
            "--users",
        ])
        .arg(&users)
        .stdin(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .filter(|_| out.status.success())
        .ok_or_else(|| {
            io::Error::other(format!(
                "rvs console passwd: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?
        .to_string();
    let log = wd.join("console.log");
    let file = std::fs::File::create(&log)?;
    let mut child = Command::new(exe)
        .args(["console", "--listen", CONSOLE, "--interval", "1", "--users"])
        .arg(&users)
        .arg("--audit")
        .arg(wd.join("console-audit.log"))
        .arg("--control")
        .arg(control)
        .arg("--config")
        .arg(cf)
        .arg("--config-versions")
        .arg(wd.join("console-versions"))
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(CONSOLE).is_err() {
        if child.try_wait()?.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "rvs console did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "\nthe console: http://{CONSOLE}/  user admin, one-time password {password}\n\
         (log {}); requests keep flowing through the VIP. Ctrl-C ends the demo.",
        log.display()
    );
    // Blocks SIGINT/SIGTERM here and in the thread started below (the console and the
    // daemon, started before, still get the terminal's Ctrl-C and end).
    let signals = rvs_sys::rawsock::TermSignals::new()?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = lab.run("client", || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = super::demo::get(super::demo::IO_TIMEOUT);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        });
        loop {
            if matches!(signals.take(), Ok(Some(_))) || matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let _ = child.kill();
    let _ = child.wait();
    println!("\nconsole stopped");
    Ok(())
}
