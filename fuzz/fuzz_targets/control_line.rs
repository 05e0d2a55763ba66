//! Fuzz target `control_line`: what it checks and its input are in [`rvs_fuzz::targets::control_line`], which
//! `scripts/test` also runs every committed seed of `corpus/control_line/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::control_line::run(data));
