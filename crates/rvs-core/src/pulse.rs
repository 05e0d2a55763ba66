//! Pulse (placeholder).
