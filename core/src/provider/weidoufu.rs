//! weidoufu (seed 004) as a [`Provider`](super::Provider).
