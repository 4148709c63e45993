//! The H5 checkout page, shared by the shops: serve [`INDEX_HTML`] at `/`, [`SHOP_JS`] at
//! `/assets/shop.js` and [`SHOP_CSS`] at `/assets/shop.css`. The page reads `/api/config` and
//! `/api/products`, precreates through `POST {prefix}/precreate` with `{openid, product_id}`,
//! pays with `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` and polls
//! `GET {prefix}/orders/{out_trade_no}` until the order is `PAID`.

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// Its script.
pub const SHOP_JS: &str = include_str!("../assets/shop.js");
/// Its style sheet.
pub const SHOP_CSS: &str = include_str!("../assets/shop.css");

/// A strict Content-Security-Policy for the page: scripts from this origin and, in sandbox mode,
/// the sandbox's origin (for its `WeixinJSBridge` shim).
pub fn content_security_policy(sandbox_origin: Option<&str>) -> String {
    let extra = sandbox_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{extra}; connect-src 'self'{extra}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    )
}
