//! Sync (placeholder).
