//! Fuzz target `ipvsadm_command`: what it checks and its input are in [`rvs_fuzz::targets::ipvsadm_command`], which
//! `scripts/test` also runs every committed seed of `corpus/ipvsadm_command/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::ipvsadm_command::run(data));
