//! rvs-config: configuration parsers (Piranha `lvs.cf`, keepalived.conf, ipvsadm rules,
//! native TOML) mapping to [`rvs_core::model::Config`], with file:line:column diagnostics.
//!
//! The parsers arrive with the configuration issue; this crate is the workspace's place for them.
#![forbid(unsafe_code)]
