//! The operator console: one static page, its script and its style sheet, compiled into the
//! engine (no build step, nothing fetched from elsewhere). The page holds no data: it asks for
//! the admin token, keeps it in memory only, and sends it as `Authorization: Bearer` to the
//! JSON routes of [`admin_api`](super::admin_api), which check it. So the page is served
//! without the token, and with headers that keep it from being framed, cached or fed other
//! scripts.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::reply;

const PAGE: &str = include_str!("console/console.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Only this origin's script and style, no inline code, no framing, no form posts: the page
/// renders order data that payers and upstreams wrote, so nothing in it may run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The console's page or asset for `path` (`…/admin/console`, `…/console/console.js`,
/// `…/console/console.css`).
pub(super) fn serve(path: &str) -> Response<Bytes> {
    let (body, content_type) = if path.ends_with("/console/console.js") {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else if path.ends_with("/console/console.css") {
        (STYLE, "text/css; charset=utf-8")
    } else if path.ends_with("/admin/console") {
        (PAGE, "text/html; charset=utf-8")
    } else {
        return reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such console asset");
    };
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
