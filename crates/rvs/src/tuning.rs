//! The daemon's own tuning options, laid over the configuration file's values at start
//! and at every reload: `--conn-table-memory SIZE` (the native format's
//! `[conn_table] memory`) and `--sysctl NAME=VALUE` for the defence sysctls of
//! `/proc/sys/net/ipv4/vs/` (`amemthresh`, `am_droprate`, `drop_entry`, `drop_packet`,
//! `secure_tcp`; the native format's `[switches]` keys of the same names) and the sync
//! daemons' socket buffer (`sync_sock_size`), `--syn-shed
//! on|off` (`[syn_shed] enabled`, docs/operating.md). They exist for
//! the formats that have no key for these (lvs.cf, keepalived.conf, ipvsadm rules).

use rvs_core::model::Config;

/// Overrides from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tuning {
    /// `--conn-table-memory`.
    pub conn_table_bytes: Option<usize>,
    /// `--sysctl NAME=VALUE`, in order.
    pub sysctls: Vec<(Sysctl, u32)>,
    /// `--syn-shed on|off`: SYN admission under overload (the native `[syn_shed] enabled`).
    pub syn_shed: Option<bool>,
}

/// A defence sysctl rvs takes on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sysctl {
    /// `amemthresh` (pages).
    Amemthresh,
    /// `am_droprate`.
    AmDroprate,
    /// `drop_entry` (0..=3).
    DropEntry,
    /// `drop_packet` (0..=3).
    DropPacket,
    /// `secure_tcp` (0..=3).
    SecureTcp,
    /// `sync_sock_size`: the master's send buffer or the backup's receive buffer, in
    /// bytes (the kernel doubles it); 0 keeps the default.
    SyncSockSize,
}

impl Tuning {
    /// Parse `--sysctl`'s argument: `NAME=VALUE`, NAME also as the full path
    /// `/proc/sys/net/ipv4/vs/NAME` or `net.ipv4.vs.NAME`.
    pub fn add_sysctl(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("--sysctl needs NAME=VALUE, not {arg:?}"))?;
        let name = name.trim();
        let short = name
            .strip_prefix("/proc/sys/net/ipv4/vs/")
            .or_else(|| name.strip_prefix("net.ipv4.vs."))
            .unwrap_or(name);
        let (sysctl, max) = match short {
            "amemthresh" => (Sysctl::Amemthresh, u32::MAX),
            "am_droprate" => (Sysctl::AmDroprate, u32::MAX),
            "drop_entry" => (Sysctl::DropEntry, 3),
            "drop_packet" => (Sysctl::DropPacket, 3),
            "secure_tcp" => (Sysctl::SecureTcp, 3),
            // The kernel's is an int (proc_dointvec); a value above 0 applies.
            "sync_sock_size" => (Sysctl::SyncSockSize, i32::MAX as u32),
            _ => {
                return Err(format!(
                    "--sysctl {name:?}: rvs takes amemthresh, am_droprate, drop_entry, \
                     drop_packet, secure_tcp or sync_sock_size here (other sysctls are \
                     configuration keys)"
                ));
            }
        };
        let v: u32 = value
            .trim()
            .parse()
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("--sysctl {short}: {value:?} is not a value in 0..={max}"))?;
        self.sysctls.push((sysctl, v));
        Ok(())
    }

    /// Parse `--syn-shed`'s argument.
    pub fn set_syn_shed(&mut self, arg: &str) -> Result<(), String> {
        self.syn_shed = Some(match arg {
            "on" => true,
            "off" => false,
            _ => return Err(format!("--syn-shed is on or off, not {arg:?}")),
        });
        Ok(())
    }

    /// Lay the overrides over `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(on) = self.syn_shed {
            config.syn_shed.enabled = on;
        }
        if let Some(b) = self.conn_table_bytes {
            config.conn_table_bytes = b;
        }
        let d = &mut config.defense;
        for (s, v) in &self.sysctls {
            match s {
                Sysctl::Amemthresh => d.amemthresh = *v,
                Sysctl::AmDroprate => d.am_droprate = *v,
                Sysctl::DropEntry => d.drop_entry = *v as u8,
                Sysctl::DropPacket => d.drop_packet = *v as u8,
                Sysctl::SecureTcp => d.secure_tcp = *v as u8,
                Sysctl::SyncSockSize => {}
            }
        }
    }

    /// `--sysctl sync_sock_size=N`'s last value, 0 without it (the kernel's default).
    pub fn sync_sock_size(&self) -> u32 {
        self.sysctls
            .iter()
            .rev()
            .find(|(s, _)| *s == Sysctl::SyncSockSize)
            .map_or(0, |(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_parse_under_their_kernel_names_and_apply() {
        let mut t = Tuning::default();
        t.add_sysctl("drop_entry=1").unwrap();
        t.add_sysctl("/proc/sys/net/ipv4/vs/secure_tcp=3").unwrap();
        t.add_sysctl("net.ipv4.vs.amemthresh=2048").unwrap();
        t.conn_table_bytes = Some(64 << 20);
        let mut c = Config::default();
        t.apply(&mut c);
        assert_eq!(
            (
                c.defense.drop_entry,
                c.defense.secure_tcp,
                c.defense.amemthresh
            ),
            (1, 3, 2048)
        );
        assert_eq!(c.conn_table_bytes, 64 << 20);
        assert!(t.add_sysctl("drop_entry=4").unwrap_err().contains("0..=3"));
        assert!(t.add_sysctl("expire_nodest_conn=1").is_err());
        assert_eq!(t.sync_sock_size(), 0);
        t.add_sysctl("net.ipv4.vs.sync_sock_size=1048576").unwrap();
        assert_eq!(t.sync_sock_size(), 1 << 20);
        assert!(t.add_sysctl("sync_sock_size=-1").is_err());
        assert!(t.add_sysctl("drop_entry").is_err());
    }

    #[test]
    fn syn_shed_is_switched_over_the_file() {
        let mut t = Tuning::default();
        let mut c = Config::default();
        t.apply(&mut c);
        assert!(
            c.syn_shed.enabled,
            "on by default, untouched without the option"
        );
        t.set_syn_shed("off").unwrap();
        t.apply(&mut c);
        assert!(!c.syn_shed.enabled);
        assert!(t.set_syn_shed("maybe").unwrap_err().contains("on or off"));
    }
}
