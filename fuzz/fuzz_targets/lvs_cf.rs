//! Fuzz target `lvs_cf`: what it checks and its input are in [`rvs_fuzz::targets::lvs_cf`], which
//! `scripts/test` also runs every committed seed of `corpus/lvs_cf/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::lvs_cf::run(data));
