//! QFPay (seed 002) as a [`Provider`](super::Provider).
