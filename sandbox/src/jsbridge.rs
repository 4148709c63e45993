//! The browser shim served at `GET /sandbox/jsbridge.js`.

/// The script: defines `WeixinJSBridge` and `wx.requestPayment` for an ordinary browser.
pub(crate) const SCRIPT: &str = include_str!("jsbridge.js");
