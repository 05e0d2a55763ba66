//! Fuzz target `vrrp_advert`: what it checks and its input are in [`rvs_fuzz::targets::vrrp_advert`], which
//! `scripts/test` also runs every committed seed of `corpus/vrrp_advert/` through, on stable Rust.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::targets::vrrp_advert::run(data));
