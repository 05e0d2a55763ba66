//! (placeholder; filled in by the sched work)
