//! (placeholder; filled in by the conn work)
