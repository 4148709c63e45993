//! End-to-end tests across the wxpay crates live in `tests/`.
