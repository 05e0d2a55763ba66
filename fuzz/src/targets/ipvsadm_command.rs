//! `rvs_config::parse_command` never panics on any argv; a command it accepts can be
//! applied to an empty and to a populated configuration without panicking.

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One word per line when the input has lines (so words may hold spaces), else
    // whitespace-separated words; argv[0] is the program name.
    let words: Vec<&str> = if text.contains('\n') {
        text.split('\n').collect()
    } else {
        text.split_ascii_whitespace().collect()
    };
    let mut args = vec!["ipvsadm".to_string()];
    args.extend(words.iter().map(|w| w.to_string()));
    match rvs_config::parse_command(&args) {
        Ok(cmd) => {
            let mut empty = rvs_core::model::Config::default();
            let _ = rvs_config::ipvsadm::apply(&mut empty, &cmd);
            let mut full = crate::config();
            let _ = rvs_config::ipvsadm::apply(&mut full, &cmd);
        }
        Err(e) => {
            assert!(!e.message.is_empty(), "a refusal without a message");
            if let Some(i) = e.arg_index {
                assert!(i < args.len(), "arg_index {i} past argv ({})", args.len());
            }
        }
    }
}
