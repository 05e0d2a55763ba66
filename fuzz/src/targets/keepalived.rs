//! `rvs_config::parse_keepalived` never panics; what it accepts validates.

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match rvs_config::parse_keepalived(text, "fuzz.conf") {
        Ok(conf) => {
            if let Err(errs) = conf.config.validate() {
                panic!("parse_keepalived accepted an invalid configuration: {errs:?}");
            }
            let _ = rvs_config::render_all(&conf.warnings);
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without diagnostics");
            let _ = rvs_config::render_all(&diags);
        }
    }
}
