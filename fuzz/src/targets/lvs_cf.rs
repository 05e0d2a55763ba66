//! `rvs_config::parse_lvs_cf` never panics; what it accepts validates.

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match rvs_config::parse_lvs_cf(text, "fuzz.cf") {
        Ok(cf) => {
            if let Err(errs) = cf.config.validate() {
                panic!("parse_lvs_cf accepted an invalid configuration: {errs:?}");
            }
            let _ = rvs_config::render_all(&cf.warnings);
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without diagnostics");
            // Rendering points into the text: it must not panic either.
            let _ = rvs_config::render_all(&diags);
        }
    }
}
