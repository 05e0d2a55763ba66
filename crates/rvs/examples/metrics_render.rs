//! Time a metrics render of a large configuration (issue 13's control load):
//! `cargo run --release -p rvs --example metrics_render [SERVICES] [ROUNDS]` builds an
//! engine with SERVICES (10,000) extra single-server services beside a three-server one,
//! as `bench/control-load` configures, then times the worker's copy
//! (`DirectorView::of`) and the engine metrics' formatting, each the median of ROUNDS (20).
//! With a label cache (`render_cached`, what the daemon's scrapes use) and without.

use rvs::metrics;
use rvs::snapshot::DirectorView;
use rvs_core::director::{Director, DirectorSettings, NetConfig};
use rvs_core::model::{Config, Protocol, RealServerConfig, ServiceKey, VirtualServiceConfig};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u16 = args.next().map_or(10_000, |a| a.parse().expect("SERVICES"));
    let rounds: usize = args.next().map_or(20, |a| a.parse().expect("ROUNDS"));
    let vip = "10.1.0.100".parse().unwrap();
    let mut services = Vec::new();
    let mut web = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip,
        port: 80,
    });
    for i in 11..14u8 {
        web.real_servers
            .push(RealServerConfig::new([10, 2, 0, i].into(), 80));
    }
    services.push(web);
    for i in 0..n {
        let mut s = VirtualServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: vip,
            port: 10_000 + i,
        });
        s.real_servers.push(RealServerConfig::new(
            [10, 2, 0, 11 + (i % 3) as u8].into(),
            10_000 + i,
        ));
        services.push(s);
    }
    let cfg = Config {
        services,
        ..Config::default()
    };
    let d = Director::new(NetConfig::default(), &cfg, DirectorSettings::default()).unwrap();
    let (mut view, mut fresh) = (Vec::new(), Vec::new());
    let mut len = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let v = DirectorView::of(&d);
        view.push(t.elapsed());
        let t = Instant::now();
        len = metrics::render(&v).len();
        fresh.push(t.elapsed());
    }
    println!(
        "{} services: worker copy (DirectorView::of) {:?}, render without cache {:?}, {} bytes",
        n + 1,
        median(view),
        median(fresh),
        len
    );
    let mut cache = metrics::LabelCache::default();
    let v = DirectorView::of(&d);
    let mut cached = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        len = metrics::render_cached(&v, &mut cache).len();
        cached.push(t.elapsed());
    }
    println!(
        "render with the label cache (the daemon's scrapes) {:?}, {len} bytes",
        median(cached)
    );
}
