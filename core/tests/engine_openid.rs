//! The openid routes (`{prefix}/openid/…`) and token-bound precreate, against the sandbox's
//! WeChat and QFPay identity endpoints.
#![allow(clippy::unwrap_used)]

mod openid_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use openid_support::*;
use serde_json::json;
use support::{Harness, call};
use wxpay_core::clock::{Clock as _, ManualClock};
use wxpay_core::engine::{AdminToken, Engine, EngineError, OpenidConfig, OpenidMode, Route};
use wxpay_core::fields::OpenId;
use wxpay_core::openid::{OpenidToken, OpenidTokenKey};
use wxpay_sandbox::SimulatedOutcome;
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mini_program_session_token_pays_in_token_required_mode() {
    let h = Harness::start().await;
    let engine = engine_with(
        &h,
        OpenidConfig::new(key())
            .mini_program(mini_program(&h))
            .mode(OpenidMode::TokenRequired),
    );
    let code = h.sandbox.wx_login(None).unwrap();
    let reply = session(&engine, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let body = reply.json();
    assert_eq!(body["openid"], h.sandbox.default_openid());
    assert_eq!(body["expires_in"], 7200);
    let token = body["openid_token"].as_str().unwrap().to_owned();
    assert_eq!(
        cookie(&reply, "wxpay_openid").as_deref(),
        Some(token.as_str())
    );
    let line = &set_cookies(&reply)[0];
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=7200"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "no public https base URL: {line}");

    // The token in each of its three places stands in for the openid.
    let by_header = precreate(
        &engine,
        json!({"amount": 101}),
        &[("x-wxpay-openid-token", &token)],
    )
    .await;
    let by_cookie = precreate(
        &engine,
        json!({"amount": 102}),
        &[("cookie", &format!("theme=dark; wxpay_openid={token}"))],
    )
    .await;
    let by_body = precreate(&engine, json!({"amount": 103, "openid_token": token}), &[]).await;
    for reply in [&by_header, &by_cookie, &by_body] {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let order = h.store.order(&reply.out_trade_no()).await;
        assert_eq!(order.openid.as_str(), h.sandbox.default_openid());
    }
    // The same openid in the body is fine too.
    let agreeing = precreate(
        &engine,
        json!({"amount": 104, "openid": h.sandbox.default_openid()}),
        &[("x-wxpay-openid-token", &token)],
    )
    .await;
    assert_eq!(agreeing.status, StatusCode::OK);

    // The order the token paid for is payable by that payer.
    let outcome = h
        .sandbox
        .pay(by_header.pay_request(SimulatedOutcome::Success))
        .await
        .unwrap();
    assert_eq!(outcome.trade_state, "SUCCESS");

    // `me` reads the cookie.
    let me = get(
        &engine,
        "/wxpay/openid/me",
        &[("cookie", &format!("wxpay_openid={token}"))],
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["openid"], h.sandbox.default_openid());
    assert!(me.json()["expires_at"].as_str().unwrap().ends_with('Z'));

    // Without a token: 401, nothing stored, no upstream call.
    let prepays = h.provider.prepays();
    let orders = h.store.all_orders().await.len();
    let bare = precreate(
        &engine,
        json!({"amount": 105, "openid": h.sandbox.default_openid()}),
        &[],
    )
    .await;
    bare.assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
    get(&engine, "/wxpay/openid/me", &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
    assert_eq!(h.provider.prepays(), prepays);
    assert_eq!(h.store.all_orders().await.len(), orders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_openid_other_than_the_tokens_is_a_mismatch_in_both_modes() {
    let h = Harness::start().await;
    for mode in [OpenidMode::TokenRequired, OpenidMode::Body] {
        let engine = engine_with(&h, full_config(&h, mode));
        let token = token_for(&h, &engine, Some("oPayerA_0000000000000000000")).await;
        let reply = precreate(
            &engine,
            json!({"amount": 100, "openid": "oPayerB_0000000000000000000"}),
            &[("x-wxpay-openid-token", &token)],
        )
        .await;
        reply.assert_error(StatusCode::BAD_REQUEST, "OPENID_MISMATCH");
    }
    assert_eq!(h.provider.prepays(), 0);
    assert!(h.store.all_orders().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_and_foreign_tokens_are_refused_with_401() {
    let h = Harness::start().await;
    let clock = Arc::new(ManualClock::at(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let engine = h
        .engine_builder()
        .openid(full_config(&h, OpenidMode::TokenRequired))
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = token_for(&h, &engine, None).await;

    let (payload, tag) = token.split_once('.').unwrap();
    let mut flipped: Vec<u8> = payload.as_bytes().to_vec();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{tag}", String::from_utf8(flipped).unwrap());

    let other_key = OpenidTokenKey::new(vec![7u8; 32]).unwrap();
    let openid = OpenId::try_from(h.sandbox.default_openid()).unwrap();
    let exp = clock.now() + time::Duration::hours(1);
    let binding = format!("wechat:{}", h.sandbox.merchant().appid);
    let other_keys = OpenidToken::issue(&other_key, &openid, &binding, exp);
    let other_app = OpenidToken::issue(&key(), &openid, "wechat:wxSomeOtherApp", exp);
    // Control: the same construction with our key and binding is accepted.
    let control = OpenidToken::issue(&key(), &openid, &binding, exp);
    let ok = get(
        &engine,
        "/wxpay/openid/me",
        &[("x-wxpay-openid-token", &control)],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);

    for bad in [&tampered, &other_keys, &other_app, &"garbage".to_owned()] {
        get(
            &engine,
            "/wxpay/openid/me",
            &[("x-wxpay-openid-token", bad)],
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
        precreate(
            &engine,
            json!({"amount": 100}),
            &[("x-wxpay-openid-token", bad)],
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
        precreate(
            &engine,
            json!({"amount": 100}),
            &[("cookie", &format!("wxpay_openid={bad}"))],
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
    }

    // Valid until its lifetime is over, refused from then on.
    clock.advance(7199);
    let still = precreate(
        &engine,
        json!({"amount": 100}),
        &[("x-wxpay-openid-token", &token)],
    )
    .await;
    assert_eq!(still.status, StatusCode::OK, "{:?}", still.body);
    clock.advance(1);
    let expired = precreate(
        &engine,
        json!({"amount": 100}),
        &[("x-wxpay-openid-token", &token)],
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
    assert!(expired["message"].as_str().unwrap().contains("expired"));
    get(
        &engine,
        "/wxpay/openid/me",
        &[("x-wxpay-openid-token", &token)],
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
    assert_eq!(
        h.provider.prepays(),
        1,
        "only the valid token reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_or_unknown_code_is_refused_without_a_cookie() {
    let h = Harness::start().await;
    let engine = engine_with(&h, full_config(&h, OpenidMode::TokenRequired));
    let code = h.sandbox.wx_login(None).unwrap();
    assert_eq!(session(&engine, &code).await.status, StatusCode::OK);
    let again = session(&engine, &code).await;
    let body = again.assert_error(StatusCode::BAD_REQUEST, "OPENID_CODE_REJECTED");
    assert_eq!(body["upstream_code"], "40163");
    assert!(set_cookies(&again).is_empty());
    let unknown = session(&engine, "0000000000000000000000000000").await;
    let body = unknown.assert_error(StatusCode::BAD_REQUEST, "OPENID_CODE_REJECTED");
    assert_eq!(body["upstream_code"], "40029");
    assert!(set_cookies(&unknown).is_empty());
    session(&engine, "")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "INVALID_FIELD");
    call(
        &engine,
        Method::POST,
        "/wxpay/openid/session",
        &[("content-type", "application/json")],
        "not json",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "INVALID_JSON");
    // A cross-site form cannot post JSON: other types are refused before the upstream.
    let code = h.sandbox.wx_login(None).unwrap();
    let form = call(
        &engine,
        Method::POST,
        "/wxpay/openid/session",
        &[("content-type", "text/plain")],
        serde_json::to_vec(&json!({ "code": code })).unwrap(),
    )
    .await;
    form.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    assert!(set_cookies(&form).is_empty());
    // The code was not spent.
    assert_eq!(session(&engine, &code).await.status, StatusCode::OK);
    call(
        &engine,
        Method::GET,
        "/wxpay/openid/session",
        &[],
        Bytes::new(),
    )
    .await
    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_account_oauth_chain_sets_the_cookie_and_returns() {
    let h = Harness::start().await;
    let engine = engine_with(&h, full_config(&h, OpenidMode::TokenRequired));
    let payer = "oOAuthPayer_000000000000000";

    let start = get(
        &engine,
        "/wxpay/openid/authorize?return_to=%2Fshop%2Fpay%3Fitem%3D7",
        &[],
    )
    .await;
    let authorize_url = location(&start);
    let parsed = reqwest::Url::parse(&authorize_url).unwrap();
    assert!(authorize_url.starts_with(&format!(
        "{}/connect/oauth2/authorize?",
        h.sandbox.base_url()
    )));
    assert_eq!(parsed.fragment(), Some("wechat_redirect"));
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["appid"], h.sandbox.merchant().appid);
    assert_eq!(
        query["redirect_uri"],
        format!("{SHOP}/wxpay/openid/callback")
    );
    assert_eq!(query["scope"], "snsapi_base");
    assert_eq!(query["response_type"], "code");
    let state = &query["state"];
    assert!(state.len() <= 128 && state.chars().all(|c| c.is_ascii_alphanumeric()));
    let state_cookie = cookie(&start, "wxpay_openid_state").unwrap();
    let line = &set_cookies(&start)[0];
    for attribute in [
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Max-Age=600",
    ] {
        assert!(line.contains(attribute), "{line}");
    }

    // The sandbox (WeChat) sends the browser back with a code and the state.
    let back = upstream_redirect(&authorize_url, Some(payer)).await;
    let callback_path = shop_path(&back);
    assert!(
        callback_path.starts_with("/wxpay/openid/callback?"),
        "{back}"
    );
    let browser_cookie = format!("wxpay_openid_state={state_cookie}");

    // Another browser (no state cookie) cannot use the callback URL.
    let stolen = get(&engine, &callback_path, &[]).await;
    stolen.assert_error(StatusCode::BAD_REQUEST, "OPENID_STATE_INVALID");
    assert!(set_cookies(&stolen).is_empty());
    // Nor can a callback whose state is not the cookie's.
    let forged_state = callback_path.replace(state.as_str(), "X".repeat(32).as_str());
    get(&engine, &forged_state, &[("cookie", &browser_cookie)])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "OPENID_STATE_INVALID");

    let done = get(&engine, &callback_path, &[("cookie", &browser_cookie)]).await;
    assert_eq!(location(&done), "/shop/pay?item=7");
    let token = cookie(&done, "wxpay_openid").unwrap();
    let token_line = set_cookies(&done)
        .into_iter()
        .find(|l| l.starts_with("wxpay_openid="))
        .unwrap();
    for attribute in [
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Max-Age=7200",
    ] {
        assert!(token_line.contains(attribute), "{token_line}");
    }
    assert_eq!(cookie(&done, "wxpay_openid_state").as_deref(), Some(""));
    let me = get(
        &engine,
        "/wxpay/openid/me",
        &[("cookie", &format!("wxpay_openid={token}"))],
    )
    .await;
    assert_eq!(me.json()["openid"], payer);

    // The page then precreates with nothing but the cookie.
    let paid = precreate(
        &engine,
        json!({"amount": 300}),
        &[("cookie", &format!("wxpay_openid={token}"))],
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    assert_eq!(
        h.store.order(&paid.out_trade_no()).await.openid.as_str(),
        payer
    );

    // Replaying the callback: the code is spent upstream.
    let replay = get(&engine, &callback_path, &[("cookie", &browser_cookie)]).await;
    let body = replay.assert_error(StatusCode::BAD_REQUEST, "OPENID_CODE_REJECTED");
    assert_eq!(body["upstream_code"], "40163");
    assert!(set_cookies(&replay).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_must_be_a_path_on_this_site() {
    let h = Harness::start().await;
    let engine = engine_with(&h, full_config(&h, OpenidMode::Body));
    for bad in [
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
        "evil",
        "%2Fa%20b",
    ] {
        let reply = get(
            &engine,
            &format!("/wxpay/openid/authorize?return_to={bad}"),
            &[],
        )
        .await;
        reply.assert_error(StatusCode::BAD_REQUEST, "INVALID_RETURN_TO");
        assert!(reply.headers.get(http::header::LOCATION).is_none());
        assert!(set_cookies(&reply).is_empty());
    }
    // Without return_to the browser comes back to the site's root.
    let payer = "oRootPayer_0000000000000000";
    let start = get(&engine, "/wxpay/openid/authorize", &[]).await;
    let state_cookie = cookie(&start, "wxpay_openid_state").unwrap();
    let back = upstream_redirect(&location(&start), Some(payer)).await;
    let done = get(
        &engine,
        &shop_path(&back),
        &[("cookie", &format!("wxpay_openid_state={state_cookie}"))],
    )
    .await;
    assert_eq!(location(&done), "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qfpay_oauth_chain_resolves_through_qfpay() {
    let h = Harness::start().await;
    let engine = engine_with(
        &h,
        OpenidConfig::new(key())
            .oauth(qfpay_oauth(&h))
            .public_base_url("http://127.0.0.1:9/")
            .mode(OpenidMode::TokenRequired),
    );
    let payer = "oQfpayPayer_000000000000000";
    let start = get(&engine, "/wxpay/openid/authorize?return_to=/checkout", &[]).await;
    let authorize_url = location(&start);
    assert!(
        authorize_url.starts_with(&format!(
            "{}/tool/v1/get_weixin_oauth_code?",
            h.sandbox.base_url()
        )),
        "{authorize_url}"
    );
    let line = &set_cookies(&start)[0];
    assert!(!line.contains("Secure"), "http public base URL: {line}");
    let state_cookie = cookie(&start, "wxpay_openid_state").unwrap();
    let back = upstream_redirect(&authorize_url, Some(payer)).await;
    let path = back.strip_prefix("http://127.0.0.1:9").unwrap();
    assert!(path.starts_with("/wxpay/openid/callback?state="), "{back}");
    let done = get(
        &engine,
        path,
        &[("cookie", &format!("wxpay_openid_state={state_cookie}"))],
    )
    .await;
    assert_eq!(location(&done), "/checkout");
    let token = cookie(&done, "wxpay_openid").unwrap();
    let me = get(
        &engine,
        "/wxpay/openid/me",
        &[("x-wxpay-openid-token", &token)],
    )
    .await;
    assert_eq!(me.json()["openid"], payer);
    // A QFPay token is bound to QFPay's app code.
    let material = h.sandbox.qfpay();
    let claims = OpenidToken::verify(
        &key(),
        &token,
        time::OffsetDateTime::now_utc(),
        &[&format!("qfpay:{}", material.app_code)],
    )
    .unwrap();
    assert_eq!(claims.openid.as_str(), payer);
    // The mini program flow is not configured here.
    session(&engine, "anything")
        .await
        .assert_error(StatusCode::NOT_FOUND, "OPENID_NOT_CONFIGURED");
    // Its code is single use too.
    let replay = get(
        &engine,
        path,
        &[("cookie", &format!("wxpay_openid_state={state_cookie}"))],
    )
    .await;
    replay.assert_error(StatusCode::BAD_REQUEST, "OPENID_CODE_REJECTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_mode_keeps_the_seeds_behaviour() {
    let h = Harness::start().await;
    let engine = engine_with(&h, full_config(&h, OpenidMode::Body));
    let openid = "oBodyPayer_0000000000000000";
    // The body's openid, no token: as without openid routes.
    let plain = precreate(&engine, json!({"amount": 100, "openid": openid}), &[]).await;
    assert_eq!(plain.status, StatusCode::OK, "{:?}", plain.body);
    assert_eq!(
        h.store.order(&plain.out_trade_no()).await.openid.as_str(),
        openid
    );
    // A stale cookie next to a body openid does not get in the way.
    let stale = precreate(
        &engine,
        json!({"amount": 101, "openid": openid}),
        &[("cookie", "wxpay_openid=stale.token")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    // A valid token stands in for a missing body openid.
    let token = token_for(&h, &engine, Some(openid)).await;
    let by_token = precreate(
        &engine,
        json!({"amount": 102}),
        &[("x-wxpay-openid-token", &token)],
    )
    .await;
    assert_eq!(by_token.status, StatusCode::OK);
    assert_eq!(
        h.store
            .order(&by_token.out_trade_no())
            .await
            .openid
            .as_str(),
        openid
    );
    // An invalid token and no body openid: sign in again.
    precreate(
        &engine,
        json!({"amount": 103}),
        &[("x-wxpay-openid-token", "bad.token")],
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED");
    // Nothing at all: the field error precreate always gave.
    let missing = precreate(&engine, json!({"amount": 104}), &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "INVALID_FIELD");
    assert_eq!(missing["field"], "openid");

    // Without an openid configuration, the openid paths are not the engine's.
    assert_eq!(h.engine.route(&Method::GET, "/wxpay/openid/me"), None);
    assert_eq!(
        h.engine.routes(),
        [Route::Precreate, Route::Notify, Route::OrderStatus]
    );
    get(&h.engine, "/wxpay/openid/me", &[])
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(
        engine.route(&Method::POST, "/wxpay/openid/session"),
        Some(Route::OpenidSession)
    );
    assert_eq!(engine.routes().len(), 7);
    assert_eq!(engine.body_limit(Route::OpenidSession), 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_openid_configurations_are_refused_at_build() {
    let h = Harness::start().await;
    let build = |config: OpenidConfig| h.engine_builder().openid(config).build();
    assert!(matches!(
        build(OpenidConfig::new(key())),
        Err(EngineError::Openid(_))
    ));
    assert!(matches!(
        build(OpenidConfig::new(key()).oauth(official_account(&h))),
        Err(EngineError::Openid(_))
    ));
    for base in [
        "ftp://shop.example",
        "https://shop.example/?a=1",
        "not a url",
    ] {
        assert!(
            matches!(
                build(
                    OpenidConfig::new(key())
                        .oauth(official_account(&h))
                        .public_base_url(base)
                ),
                Err(EngineError::Openid(_))
            ),
            "{base}"
        );
    }
    assert!(matches!(
        build(
            OpenidConfig::new(key())
                .mini_program(mini_program(&h))
                .token_ttl(Duration::ZERO)
        ),
        Err(EngineError::Openid(_))
    ));
    assert!(OpenidTokenKey::new(b"too short".to_vec()).is_err());
    // A mini program alone needs no public URL; the OAuth routes answer "not configured".
    let engine = build(OpenidConfig::new(key()).mini_program(mini_program(&h))).unwrap();
    get(&engine, "/wxpay/openid/authorize?return_to=/", &[])
        .await
        .assert_error(StatusCode::NOT_FOUND, "OPENID_NOT_CONFIGURED");
    get(&engine, "/wxpay/openid/callback?code=a&state=b", &[])
        .await
        .assert_error(StatusCode::NOT_FOUND, "OPENID_NOT_CONFIGURED");
}

// ---------------------------------------------------------------------------------------------
// The status route tells each caller only what is theirs.

/// `GET /wxpay/orders/{no}` on `engine` with `headers`.
async fn status_on(engine: &Engine, no: &str, headers: &[(&str, &str)]) -> support::Reply {
    get(engine, &format!("/wxpay/orders/{no}"), headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_token_mode_the_status_route_answers_only_the_orders_payer() {
    let h = Harness::start().await;
    let engine = h
        .engine_builder()
        .openid(
            OpenidConfig::new(key())
                .mini_program(mini_program(&h))
                .mode(OpenidMode::TokenRequired),
        )
        .admin_token(AdminToken::new(support::ADMIN_TOKEN).unwrap())
        .build()
        .unwrap();
    let payer = token_for(&h, &engine, None).await;
    let stranger = token_for(&h, &engine, Some("oStranger_0000000000000000000")).await;
    let reply = precreate(
        &engine,
        json!({"amount": 321}),
        &[("x-wxpay-openid-token", &payer)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let no = reply.out_trade_no();

    // No token: 401, before the order is even looked up (nothing to enumerate).
    for number in [no.as_str(), "NO_SUCH_ORDER_1"] {
        let anonymous = status_on(&engine, number, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{number}");
        assert_eq!(anonymous.json()["code"], "OPENID_REQUIRED");
    }
    // Another payer's token: the same 404 as an order that does not exist.
    let foreign = status_on(&engine, &no, &[("x-wxpay-openid-token", &stranger)]).await;
    let missing = status_on(
        &engine,
        "NO_SUCH_ORDER_1",
        &[("x-wxpay-openid-token", &stranger)],
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.json()["code"], missing.json()["code"]);
    // The payer, by header or cookie: the payer's view, never the openid.
    for headers in [
        vec![("x-wxpay-openid-token", payer.clone())],
        vec![("cookie", format!("wxpay_openid={payer}"))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let own = status_on(&engine, &no, &headers).await;
        assert_eq!(own.status, StatusCode::OK);
        let json = own.json();
        assert_eq!(json["status"], "PENDING");
        assert_eq!(json["amount"], 321);
        assert!(json.get("openid").is_none(), "{json}");
    }
    // The operator sees everything, whoever paid.
    let bearer = format!("Bearer {}", support::ADMIN_TOKEN);
    let operator = status_on(&engine, &no, &[("authorization", &bearer)]).await;
    assert_eq!(operator.status, StatusCode::OK);
    let json = operator.json();
    assert_eq!(json["openid"], h.sandbox.default_openid());
    assert_eq!(json["amount"], 321);
    assert!(json["created_at"].is_string(), "{json}");
    // A wrong admin token is no one in particular: still 401 without a payer token.
    let wrong = status_on(
        &engine,
        &no,
        &[(
            "authorization",
            "Bearer not-the-admin-token-0123456789abcdef",
        )],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_body_mode_a_stranger_learns_only_the_status_of_a_paid_order() {
    let h = Harness::builder().operator().start().await;
    let outcome = h.paid_order("PRIVACY0001", 500).await;
    let public = h.status("PRIVACY0001").await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(
        public.json(),
        json!({"out_trade_no": "PRIVACY0001", "status": "PAID"}),
        "no transaction id, no times, no openid, no amount"
    );
    let operator = h.status_as_operator("PRIVACY0001").await.json();
    assert_eq!(
        operator["transaction_id"].as_str(),
        outcome.transaction_id.as_deref()
    );
    assert_eq!(operator["openid"], support::OPENID);
    assert!(operator["paid_at"].is_string());

    // With openid routes in body mode, the payer's own token shows the payer's view.
    let engine = h
        .engine_builder()
        .openid(OpenidConfig::new(key()).mini_program(mini_program(&h)))
        .build()
        .unwrap();
    let payer = token_for(&h, &engine, Some(support::OPENID)).await;
    let own = status_on(&engine, "PRIVACY0001", &[("x-wxpay-openid-token", &payer)]).await;
    let json = own.json();
    assert_eq!(json["amount"], 500);
    assert_eq!(
        json["transaction_id"].as_str(),
        outcome.transaction_id.as_deref()
    );
    assert!(json.get("openid").is_none(), "{json}");
    let stranger = token_for(&h, &engine, Some("oStranger_0000000000000000000")).await;
    let foreign = status_on(
        &engine,
        "PRIVACY0001",
        &[("x-wxpay-openid-token", &stranger)],
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}
