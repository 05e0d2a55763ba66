//! The fuzz targets' code, one module per target (`fuzz_targets/NAME.rs` calls
//! `targets::NAME::run`), so the committed corpora can be replayed by a plain test.

pub mod control;
pub mod control_line;
pub mod frame;
pub mod heartbeat;
pub mod ipvsadm_command;
pub mod ipvsadm_rules;
pub mod keepalived;
pub mod lvs_cf;
pub mod sync_message;
pub mod synproxy;
pub mod vrrp_advert;
