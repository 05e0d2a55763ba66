//! Fuzz target `control`: what it checks and its input are in [`rvs_fuzz::targets::control`], which
//! `scripts/test` also runs every committed seed of `corpus/control/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::control::run(data));
