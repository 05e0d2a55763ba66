//! (placeholder; filled in by the director work)
