//! Unit tests: see `../tests/cases.rs` for the cases that drive tasks through both halves.
