//! FTP through a NAT VIP, as the LVS documentation warns it needs care: vsftpd on every real
//! server, `curl ftp://VIP/...` from the client in passive mode (PASV's `227` reply names
//! the real server's private address, which the director must rewrite to the VIP, shifting
//! the TCP sequence numbers for the longer text) and in active mode (the real server
//! connects from its port 20 to the client, which the director must translate to VIP:20).
//! Without the FTP helper both listings fail: passive mode would connect to an unreachable
//! private address, active mode's data connection would match no connection entry.

use std::time::Duration;

use crate::cluster::Director;
use crate::harness::lab;
use crate::lab::{self, Httpd, Lab, LabOptions, Method};

/// vsftpd for anonymous downloads from `root`, data from port 20 in active mode.
fn vsftpd(lab: &Lab, i: usize) -> u32 {
    let node = format!("rs{i}");
    let dir = lab.info().workdir().join(format!("ftp-rs{i}"));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    // vsftpd refuses a writable anonymous root.
    std::fs::write(root.join("hello.txt"), format!("hello from rs{i}\n")).unwrap();
    let mut perm = std::fs::metadata(&root).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o555);
    std::fs::set_permissions(&root, perm).unwrap();
    let conf = dir.join("vsftpd.conf");
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_ipv6=NO\nbackground=NO\nanonymous_enable=YES\n\
             local_enable=NO\nwrite_enable=NO\nanon_root={}\nno_anon_password=YES\n\
             pasv_enable=YES\npasv_min_port=30000\npasv_max_port=30100\n\
             port_enable=YES\nconnect_from_port_20=YES\nseccomp_sandbox=NO\n\
             secure_chroot_dir=/var/run/vsftpd/empty\nxferlog_enable=NO\n\
             pasv_promiscuous=NO\nport_promiscuous=NO\n",
            root.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/var/run/vsftpd/empty").unwrap();
    let pid = lab
        .spawn(&node, "vsftpd", [conf.as_os_str()])
        .expect("vsftpd starts");
    lab.wait_listening(&node, pid, 21, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("vsftpd on {node}: {e}\n{}", lab.log_tail(pid)));
    pid
}

fn lvs_cf() -> String {
    let mut s = String::from(
        "network = nat\nnat_router = 10.2.0.254 eth1:1\n\
         virtual ftp {\n    active = 1\n    address = 10.1.0.100 eth0:1\n    port = 21\n\
         \x20   protocol = tcp\n    scheduler = rr\n",
    );
    for i in 1..=2 {
        s += &format!(
            "    server rs{i} {{\n        address = {}\n        active = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    s + "}\n"
}

fn curl(lab: &Lab, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["-s", "-S", "--max-time", "10", "ftp://10.1.0.100/hello.txt"];
    args.extend_from_slice(extra);
    let out = lab.exec("client", "curl", &args).unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn ftp_passive_and_active_through_a_nat_vip() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 2,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    for i in 1..=2 {
        vsftpd(&lab, i);
    }
    let director = Director::start(&lab, "ftp", &lvs_cf());
    // Passive: PASV (227) only, EPSV disabled, and curl told to connect to the address the
    // 227 reply names (by default it reuses the control address): the rewrite is tested.
    for _ in 0..2 {
        let (ok, out) = curl(
            &lab,
            &["--ftp-pasv", "--disable-epsv", "--no-ftp-skip-pasv-ip"],
        );
        assert!(
            ok,
            "passive (PASV) download through the VIP: {out}\n{}",
            director.log()
        );
        assert!(out.starts_with("hello from rs"), "{out}");
    }
    // Passive with EPSV (229): no address to rewrite, the data connection still must follow.
    let (ok, out) = curl(&lab, &["--ftp-pasv"]);
    assert!(ok, "passive (EPSV) download: {out}");
    // Active: PORT (EPRT disabled), the real server connects from port 20.
    for _ in 0..2 {
        let (ok, out) = curl(&lab, &["--ftp-port", "10.1.0.10", "--disable-eprt"]);
        assert!(
            ok,
            "active (PORT) download through the VIP: {out}\n{}",
            director.log()
        );
        assert!(out.starts_with("hello from rs"), "{out}");
    }
    // Both real servers served (rr over the control connections).
    let stats = director.listing(&["--stats"]);
    for i in 1..=2 {
        let line = stats
            .lines()
            .find(|l| l.contains(&format!("{}:21", lab::rs_addr(i))))
            .unwrap_or_else(|| panic!("rs{i} in\n{stats}"));
        let conns: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(
            conns >= 2,
            "rs{i} served control and data connections:\n{stats}"
        );
    }
}
