//! Shared pieces of the example apps (`cargo run --example NAME`), reusable by every framework's
//! shop:
//!
//! - [`config`]: the environment contract (`WXPAY_*`, `DATABASE_URL`), sandbox or production mode.
//! - [`catalog`]: the demo products and the checkout policy that prices orders server-side.
//! - [`shop`]: starts the upstream (the in-process sandbox or WeChat Pay), the store and the
//!   engine.
//! - [`assets`]: the H5 checkout page.

pub mod assets;
pub mod catalog;
pub mod config;
pub mod shop;

pub use config::{ConfigError, ShopConfig};
pub use shop::Shop;
