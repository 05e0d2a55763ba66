//! Integration tests of rvs-sys against the real kernel, in network namespaces joined by
//! veth pairs. They need root and fail (never skip) when a namespace cannot be built.
//!
//! One test binary, one module per subject; `lab` builds the two-namespace setup.

mod fanout;
mod lab;
mod netlink;
mod netns_guard;
mod offloads;
mod options;
mod rings;
mod tunnel;
