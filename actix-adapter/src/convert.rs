//! Conversions between actix-web's `http` 0.2 types and the engine's `http` 1.x types, done at
//! the edge by name, bytes and number.

use actix_web::http::header::{HeaderName as ActixHeaderName, HeaderValue as ActixHeaderValue};
use actix_web::http::{StatusCode as ActixStatusCode, Version as ActixVersion};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use wxpay_core::engine::ClientAddr;

/// The request headers, as an `http` 1.x [`http::HeaderMap`]. A header whose name or value
/// `http` 1.x refuses (none in practice: both versions accept the same bytes) is dropped.
pub(crate) fn headers(request: &HttpRequest) -> http::HeaderMap {
    let mut map = http::HeaderMap::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn method(request: &HttpRequest) -> http::Method {
    // Every method actix accepted is a valid token; fall back to an impossible route method
    // rather than panicking, so that the engine answers 405.
    http::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(http::Method::TRACE)
}

fn version(request: &HttpRequest) -> http::Version {
    match request.version() {
        ActixVersion::HTTP_09 => http::Version::HTTP_09,
        ActixVersion::HTTP_10 => http::Version::HTTP_10,
        ActixVersion::HTTP_2 => http::Version::HTTP_2,
        ActixVersion::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_11,
    }
}

/// The engine's request: method, version and headers of `request`, the engine-relative `path`
/// (plus the query string), the body, and the peer address as [`ClientAddr`].
pub(crate) fn engine_request(
    request: &HttpRequest,
    path: &str,
    body: Bytes,
) -> http::Request<Bytes> {
    let query = request.query_string();
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut converted = http::Request::new(body);
    *converted.method_mut() = method(request);
    *converted.version_mut() = version(request);
    // The path comes from the engine's prefix and a segment actix matched, the query from a
    // URI actix parsed: both parse again; if not, the engine sees the bare path and answers.
    *converted.uri_mut() = uri
        .parse()
        .or_else(|_| path.parse())
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    *converted.headers_mut() = headers(request);
    if let Some(peer) = request.peer_addr() {
        converted.extensions_mut().insert(ClientAddr(peer.ip()));
    }
    converted
}

/// Converts one of the engine's replies (status, headers, body: all of it) into an actix-web
/// response.
pub fn into_actix_response(response: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    build(parts.status, &parts.headers, body)
}

/// Builds an actix-web response from borrowed reply parts.
pub(crate) fn to_actix_response(response: &http::Response<Bytes>) -> HttpResponse {
    build(
        response.status(),
        response.headers(),
        response.body().clone(),
    )
}

fn build(status: http::StatusCode, headers: &http::HeaderMap, body: Bytes) -> HttpResponse {
    let mut builder = HttpResponse::build(actix_status(status));
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            ActixHeaderName::from_bytes(name.as_str().as_bytes()),
            ActixHeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder.append_header((name, value));
        }
    }
    builder.body(body)
}

/// The reply's status in actix-web's type.
pub(crate) fn actix_status(status: http::StatusCode) -> ActixStatusCode {
    ActixStatusCode::from_u16(status.as_u16()).unwrap_or(ActixStatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use actix_web::body::MessageBody as _;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_request_keeps_method_headers_query_and_peer() {
        let peer: SocketAddr = "203.0.113.7:5555".parse().expect("address");
        let request = TestRequest::post()
            .uri("/api/wxpay/precreate?a=1&b=%20")
            .peer_addr(peer)
            .append_header(("x-multi", "one"))
            .append_header(("x-multi", "two"))
            .insert_header(("content-type", "application/json"))
            .to_http_request();
        let converted = engine_request(&request, "/wxpay/precreate", Bytes::from_static(b"{}"));
        assert_eq!(converted.method(), http::Method::POST);
        assert_eq!(converted.uri().path(), "/wxpay/precreate");
        assert_eq!(converted.uri().query(), Some("a=1&b=%20"));
        assert_eq!(converted.version(), http::Version::HTTP_11);
        let multi: Vec<_> = converted.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["one", "two"]);
        assert_eq!(converted.headers()["content-type"], "application/json");
        assert_eq!(
            converted.extensions().get::<ClientAddr>(),
            Some(&ClientAddr(peer.ip()))
        );
        assert_eq!(converted.body().as_ref(), b"{}");

        let without_peer = TestRequest::get().uri("/wxpay/orders/x").to_http_request();
        let converted = engine_request(&without_peer, "/wxpay/orders/x", Bytes::new());
        assert!(converted.extensions().get::<ClientAddr>().is_none());
        assert_eq!(converted.uri().query(), None);
    }

    #[test]
    fn the_response_keeps_status_every_header_and_the_body() {
        let reply = http::Response::builder()
            .status(http::StatusCode::IM_A_TEAPOT)
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("content-type", "text/plain")
            .body(Bytes::from_static(b"short and stout"))
            .expect("response");
        let borrowed = to_actix_response(&reply);
        let response = into_actix_response(reply);
        for response in [borrowed, response] {
            assert_eq!(response.status().as_u16(), 418);
            let cookies: Vec<_> = response.headers().get_all("set-cookie").collect();
            assert_eq!(cookies, ["a=1", "b=2"]);
            assert_eq!(
                response.headers().get("content-type").expect("type"),
                "text/plain"
            );
            let body = response.into_body().try_into_bytes().expect("bytes body");
            assert_eq!(body.as_ref(), b"short and stout");
        }
    }
}
