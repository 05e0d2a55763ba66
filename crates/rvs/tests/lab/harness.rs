//! Lab setup helpers shared by the test modules.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use rvs_sys::netns::{self, Netns};

use crate::lab::{Lab, LabInfo, LabOptions};

/// The `rvs` binary under test.
pub(crate) fn rvs_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rvs"))
}

/// The tests keep their lab state files apart from labs people start by hand, so that
/// `rvs lab down` without `--name` is never confused by a test run.
pub(crate) fn state_dir() -> PathBuf {
    PathBuf::from("/run/rvs-lab-tests")
}

/// Fails (never skips) unless this process can build network namespaces.
pub(crate) fn require_root_lab() {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?");
        if euid != "0" {
            return Err(format!("effective uid is {euid}, not 0"));
        }
        let ns = Netns::new("rvstest-probe").map_err(|e| e.to_string())?;
        ns.exec("true", [] as [&str; 0])
            .map_err(|e| e.to_string())?;
        Ok(())
    });
    if let Err(e) = probe {
        panic!(
            "the lab tests build network namespaces, veth pairs and bridges: they must run as \
             root with iproute2 (`ip netns`) available, and they do not skip. Could not: {e}"
        );
    }
}

/// Builds a lab for a test (names `t1`, `t2`, ... in the tests' state directory).
pub(crate) fn lab(opts: LabOptions) -> Lab {
    require_root_lab();
    Lab::up(LabOptions {
        name_prefix: "t".into(),
        rvs_exe: Some(rvs_exe()),
        state_dir: state_dir(),
        ..opts
    })
    .unwrap_or_else(|e| panic!("building the lab failed: {e}"))
}

/// Whether process `pid` still runs (a zombie counts as ended).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next()),
            Some("Z" | "X")
        ),
        Err(_) => false,
    }
}

/// Asserts that nothing of lab `info` remains: namespaces, processes, state, work files.
pub(crate) fn assert_gone(info: &LabInfo, pids: &[u32]) {
    let left = netns::list().expect("ip netns list");
    for (node, ns) in &info.namespaces {
        assert!(!left.contains(ns), "namespace {ns} ({node}) is left behind");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for &pid in pids {
        while alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "process {pid} is left running");
    }
    assert!(
        !info.state_file().exists(),
        "state file {:?} is left",
        info.state_file()
    );
    assert!(
        !info.workdir().exists(),
        "work directory {:?} is left",
        info.workdir()
    );
}

/// `rvs ARGS...`, waited for.
pub(crate) fn rvs(args: &[&str]) -> Output {
    Command::new(rvs_exe())
        .args(args)
        .output()
        .expect("running the rvs binary")
}

/// An HTTP/1.1 client connection that reads responses by `Content-Length`.
pub(crate) struct Http {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One response: status, headers (lower-cased names), body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Http {
    pub(crate) fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::open(addr, Duration::from_secs(2), Duration::from_secs(5))
    }

    /// Connects within `timeout`; each read times out after `timeout` too.
    pub(crate) fn connect_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        Self::open(addr, timeout, timeout)
    }

    fn open(addr: SocketAddr, connect: Duration, read: Duration) -> io::Result<Self> {
        let s = TcpStream::connect_timeout(&addr, connect)?;
        s.set_read_timeout(Some(read))?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    pub(crate) fn send(&mut self, raw: &str) -> io::Result<()> {
        self.writer.write_all(raw.as_bytes())
    }

    pub(crate) fn get(&mut self, path: &str) -> io::Result<Response> {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n"))?;
        self.read_response()
    }

    pub(crate) fn read_response(&mut self) -> io::Result<Response> {
        self.read(false)
    }

    /// Reads the response to a HEAD request (a Content-Length, but no body).
    pub(crate) fn read_head_response(&mut self) -> io::Result<Response> {
        self.read(true)
    }

    fn read(&mut self, head_only: bool) -> io::Result<Response> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| io::Error::other(format!("header {l:?}")))?;
            headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
        }
        let len: u64 = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| io::Error::other("no content-length"))?;
        let mut body = Vec::new();
        if !head_only {
            (&mut self.reader).take(len).read_to_end(&mut body)?;
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// True when the server has closed the connection (EOF on the next read).
    pub(crate) fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}
