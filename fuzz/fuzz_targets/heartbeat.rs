//! Fuzz target `heartbeat`: what it checks and its input are in [`rvs_fuzz::targets::heartbeat`], which
//! `scripts/test` also runs every committed seed of `corpus/heartbeat/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::heartbeat::run(data));
