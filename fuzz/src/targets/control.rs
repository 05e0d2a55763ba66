//! The control protocol's daemon side, through what `rvs` makes public.
//!
//! The request-line parser (`parse_request` in `crates/rvs/src/daemon.rs`) is private and
//! the public `rvs::daemon::control_request` is socket I/O, so this target fuzzes what a
//! request runs: `reload` (a new configuration, here ipvsadm rules text, parsed and
//! applied to a running director that has connections, as `Reloader::reload` does after
//! parsing) and then every answer a request can give: `list` in each format, with and
//! without `--exact` (`rvs::listing::render`), and `metrics` (`rvs::metrics::render` of the view the worker would copy).
//!
//! Input: ipvsadm rules text (the configuration reloaded).

use rvs::listing::Format;
use rvs_core::director::Director;
use rvs_core::model::{Config, Protocol, ServiceKey};
use rvs_core::time::Instant;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

static CONFIG: OnceLock<Config> = OnceLock::new();

const FORMATS: [Format; 6] = [
    Format::Plain,
    Format::Stats,
    Format::Rate,
    Format::Thresholds,
    Format::PersistentConn,
    Format::Connections,
];

/// A client's first packet to each of the first services with an address.
fn traffic(d: &mut Director, now: Instant, config: &Config, sport: u16) {
    let keys: Vec<(bool, IpAddr, u16)> = config
        .services
        .iter()
        .filter_map(|s| match s.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => Some((
                protocol == Protocol::Udp,
                addr,
                if port == 0 { 80 } else { port },
            )),
            ServiceKey::Fwmark { .. } => None,
        })
        .take(8)
        .collect();
    for (i, (udp, addr, port)) in keys.into_iter().enumerate() {
        let f = crate::client_frame(udp, addr, port, sport + i as u16);
        crate::send(d, now, crate::PUB, &f);
    }
    crate::drain(d);
}

fn answers(d: &Director, now: Instant) {
    for f in FORMATS {
        for exact in [false, true] {
            let text = rvs::listing::render(d, f, exact, now);
            assert!(!text.is_empty(), "an empty listing for {f:?}");
        }
    }
    let _ = rvs::metrics::render(&rvs::snapshot::DirectorView::of(d));
}

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(new) = rvs_config::parse_rules(text, "fuzz.rules") else {
        return;
    };
    // `rvs daemon` starting on it.
    let mut fresh = match Director::new(crate::net(), &new, crate::settings()) {
        Ok(d) => d,
        Err(e) => panic!("Director::new refuses what parse_rules accepted: {e:?}"),
    };
    crate::learn(&mut fresh, Instant::ZERO);
    traffic(&mut fresh, Instant::ZERO, &new, 30000);
    answers(&fresh, Instant::ZERO);

    // A running daemon with connections, reloaded.
    let base = CONFIG.get_or_init(crate::config);
    let mut d = crate::director(base);
    let mut now = Instant::ZERO;
    traffic(&mut d, now, base, 40000);
    now = now + Duration::from_secs(1);
    if let Err(e) = d.apply(&new) {
        panic!("Director::apply refuses what parse_rules accepted: {e:?}");
    }
    answers(&d, now);
    traffic(&mut d, now, &new, 50000);
    now = now + Duration::from_secs(3);
    let _ = d.expire(now);
    answers(&d, now);
    // And back.
    if let Err(e) = d.apply(base) {
        panic!("Director::apply refuses the base configuration: {e:?}");
    }
    now = now + Duration::from_secs(1000);
    let _ = d.expire(now);
    answers(&d, now);
}
