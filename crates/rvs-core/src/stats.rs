//! (placeholder; filled in by the stats work)
