//! Cross-checks of the wire views against etherparse, an independent parser.
