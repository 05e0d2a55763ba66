//! Fuzz target `sync_message`: what it checks and its input are in [`rvs_fuzz::targets::sync_message`], which
//! `scripts/test` also runs every committed seed of `corpus/sync_message/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::sync_message::run(data));
