//! # wxpay-core
//!
//! The framework-agnostic engine of wxpay: WeChat Pay API v3 protocol code and HTTP client,
//! validated field types, the order model and its stores. Web-framework adapters
//! (`wxpay-tower`, `wxpay-actix`) mount it; this crate only speaks [`http`] types and bytes.
//!
//! - [`v3`]: the WeChat Pay API v3 protocol: credentials, request signing, JSAPI client
//!   parameters, response and notification verification, resource decryption, typed models, and
//!   the [`v3::V3Client`] HTTP client with platform-certificate management.
//! - [`fields`]: validated newtypes for order numbers, amounts (integer fen), texts and URLs.
//! - [`clock`] and [`nonce`]: injectable time and randomness, so tests are byte-exact.

#![warn(clippy::unwrap_used)]

pub mod clock;
pub mod engine;
pub mod fields;
pub mod nonce;
pub mod order;
pub mod provider;
pub mod store;
pub mod v3;
