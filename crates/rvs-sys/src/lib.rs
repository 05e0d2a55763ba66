//! rvs-sys: the Linux side of rvs — AF_PACKET rings, AF_XDP, netlink, raw sockets and
//! namespaces. Every `unsafe` block of the project lives here, each with a `// SAFETY:` line.
//!
//! The packet I/O arrives with the data-plane issue.
