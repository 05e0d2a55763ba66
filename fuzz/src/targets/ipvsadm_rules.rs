//! `rvs_config::parse_rules` never panics; what it accepts validates and round-trips
//! through `save_in_order` (and through `save`, to ipvsadm's order), as the
//! `rvs_config::ipvsadm` documentation promises.

use rvs_config::ipvsadm::{ipvsadm_order, save_in_order};
use rvs_config::{parse_rules, render_all, save};

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let c = match parse_rules(text, "fuzz.rules") {
        Ok(c) => c,
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without diagnostics");
            let _ = render_all(&diags);
            return;
        }
    };
    if let Err(errs) = c.validate() {
        panic!("parse_rules accepted an invalid configuration: {errs:?}");
    }
    let saved = save_in_order(&c);
    match parse_rules(&saved, "saved.rules") {
        Ok(back) => {
            assert_eq!(
                back, c,
                "parse_rules(save_in_order(c)) != c; saved:\n{saved}"
            );
            assert_eq!(save_in_order(&back), saved, "save_in_order is not stable");
        }
        Err(d) => panic!(
            "save_in_order wrote rules parse_rules refuses:\n{saved}\n{}",
            render_all(&d)
        ),
    }
    let sorted = save(&c);
    match parse_rules(&sorted, "sorted.rules") {
        Ok(back) => assert_eq!(
            back,
            ipvsadm_order(&c),
            "parse_rules(save(c)) != ipvsadm_order(c); saved:\n{sorted}"
        ),
        Err(d) => panic!(
            "save wrote rules parse_rules refuses:\n{sorted}\n{}",
            render_all(&d)
        ),
    }
}
