//! The identity endpoints, driven over HTTP as a shop's server and a browser would: WeChat's
//! OAuth2 redirect and `sns/oauth2/access_token`, `wx.login` and `sns/jscode2session`, and
//! QFPay's `get_weixin_oauth_code` / `get_weixin_openid` (signed here with a port of seed 002's
//! `make_req_sign`).

#![allow(clippy::unwrap_used)]

use md5::{Digest, Md5};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wxpay_sandbox::{Sandbox, SandboxConfig, SandboxError};

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::for_tests()).await.unwrap()
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Seed 002's `make_req_sign`: sorted `k=v` joined by `&`, the key appended, MD5, upper hex.
fn make_req_sign(data: &[(&str, &str)], key: &str) -> String {
    let mut sorted = data.to_vec();
    sorted.sort();
    let p: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let unsigned = p.join("&") + key;
    Md5::digest(unsigned.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The value of `name` in the query of `url`.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap();
    query.split('&').find_map(|f| {
        let (k, v) = f.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
    })
}

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

fn location(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::FOUND, "expected a redirect");
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The OAuth2 authorize URL a shop builds (plus `extra` parameters).
fn authorize_url(sandbox: &Sandbox, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("appid", sandbox.merchant().appid.as_str()),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "snsapi_base"),
    ];
    pairs.extend_from_slice(extra);
    format!(
        "{}/connect/oauth2/authorize?{}",
        sandbox.base_url(),
        query(&pairs)
    )
}

/// Goes through the authorize redirect and returns the code.
async fn oauth_code(sandbox: &Sandbox, extra: &[(&str, &str)]) -> String {
    let r = get(&authorize_url(sandbox, "https://shop.example/cb", extra)).await;
    query_value(&location(&r), "code").unwrap()
}

async fn exchange(sandbox: &Sandbox, path: &str, pairs: &[(&str, &str)]) -> (String, Value) {
    let r = get(&format!("{}{path}?{}", sandbox.base_url(), query(pairs))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

async fn access_token(sandbox: &Sandbox, code: &str) -> Value {
    let appid = sandbox.merchant().appid.clone();
    exchange(
        sandbox,
        "/sns/oauth2/access_token",
        &[
            ("appid", &appid),
            ("secret", sandbox.app_secret()),
            ("code", code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await
    .1
}

async fn jscode2session(sandbox: &Sandbox, js_code: &str) -> Value {
    let appid = sandbox.merchant().appid.clone();
    exchange(
        sandbox,
        "/sns/jscode2session",
        &[
            ("appid", &appid),
            ("secret", sandbox.app_secret()),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await
    .1
}

/// Query parameters, and the `errcode` and `errmsg` they must get.
type ErrcodeCase<'a> = (Vec<(&'a str, &'a str)>, i64, &'a str);

fn assert_errcode(v: &Value, code: i64, message: &str) {
    assert_eq!(v["errcode"], code, "{v}");
    assert_eq!(v["errmsg"], message, "{v}");
    assert!(v.get("openid").is_none(), "{v}");
}

#[tokio::test]
async fn oauth2_redirects_with_code_and_state_and_the_code_names_the_default_payer() {
    let sandbox = start().await;
    let r = get(&authorize_url(
        &sandbox,
        "https://shop.example/wxpay/openid/callback?return_to=%2Fpay#top",
        &[("state", "St4te-of_the.art")],
    ))
    .await;
    let loc = location(&r);
    assert!(
        loc.starts_with("https://shop.example/wxpay/openid/callback?return_to=%2Fpay&code="),
        "{loc}"
    );
    assert!(loc.ends_with("#top"), "{loc}");
    assert_eq!(query_value(&loc, "state").unwrap(), "St4te-of_the.art");
    let code = query_value(&loc, "code").unwrap();
    assert_eq!(code.len(), 32);

    let (ct, v) = exchange(
        &sandbox,
        "/sns/oauth2/access_token",
        &[
            ("appid", &sandbox.merchant().appid.clone()),
            ("secret", sandbox.app_secret()),
            ("code", &code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(v["openid"], sandbox.default_openid());
    assert_eq!(v["scope"], "snsapi_base");
    assert_eq!(v["expires_in"], 7200);
    assert!(!v["access_token"].as_str().unwrap().is_empty());
    assert!(!v["refresh_token"].as_str().unwrap().is_empty());
    assert!(v.get("errcode").is_none());

    // Single use.
    assert_errcode(
        &access_token(&sandbox, &code).await,
        40163,
        "code been used",
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn default_payer_is_a_28_character_openid_fixed_for_the_sandbox_run() {
    let sandbox = start().await;
    let openid = sandbox.default_openid().to_owned();
    assert_eq!(openid.len(), 28);
    assert!(openid.starts_with('o'));
    assert!(openid.bytes().all(|b| b.is_ascii_alphanumeric()));
    let code = oauth_code(&sandbox, &[]).await;
    assert_eq!(access_token(&sandbox, &code).await["openid"], openid);
    let other = start().await;
    assert_ne!(other.default_openid(), openid);
    sandbox.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn oauth2_without_state_and_with_snsapi_userinfo() {
    let sandbox = start().await;
    let url = format!(
        "{}/connect/oauth2/authorize?{}",
        sandbox.base_url(),
        query(&[
            ("appid", &sandbox.merchant().appid),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
            ("scope", "snsapi_userinfo"),
        ])
    );
    let loc = location(&get(&url).await);
    assert!(loc.starts_with("http://127.0.0.1:9/cb?code="), "{loc}");
    assert!(query_value(&loc, "state").is_none(), "{loc}");
    let v = access_token(&sandbox, &query_value(&loc, "code").unwrap()).await;
    assert_eq!(v["scope"], "snsapi_userinfo");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn sandbox_openid_picks_the_payer_of_the_oauth2_redirect() {
    let sandbox = start().await;
    let code = oauth_code(&sandbox, &[("sandbox_openid", "oPayerTwo_-1")]).await;
    assert_eq!(
        access_token(&sandbox, &code).await["openid"],
        "oPayerTwo_-1"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn authorize_refuses_bad_parameters_with_an_error_page() {
    let sandbox = start().await;
    let appid = sandbox.merchant().appid.clone();
    let good = |over: &[(&str, &str)], drop: &str| {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("appid", appid.as_str()),
            ("redirect_uri", "https://shop.example/cb"),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
        ];
        pairs.retain(|(k, _)| *k != drop && !over.iter().any(|(o, _)| o == k));
        pairs.extend_from_slice(over);
        format!(
            "{}/connect/oauth2/authorize?{}",
            sandbox.base_url(),
            query(&pairs)
        )
    };
    let long_state = "s".repeat(129);
    let cases: Vec<(String, &str)> = vec![
        (
            good(&[("appid", "wx0000000000000000")], ""),
            "appid参数错误",
        ),
        (good(&[], "appid"), "appid参数错误"),
        (good(&[], "redirect_uri"), "redirect_uri参数错误"),
        (good(&[("redirect_uri", "/cb")], ""), "redirect_uri参数错误"),
        (
            good(&[("redirect_uri", "javascript:alert(1)")], ""),
            "redirect_uri参数错误",
        ),
        (
            good(&[("response_type", "token")], ""),
            "response_type参数错误",
        ),
        (good(&[], "scope"), "scope参数错误"),
        (good(&[("scope", "snsapi_login")], ""), "scope参数错误"),
        (good(&[("state", &long_state)], ""), "state参数错误"),
        (
            good(&[("sandbox_openid", "not an openid")], ""),
            "sandbox_openid参数错误",
        ),
        (
            format!("{}&appid=again", good(&[], "")),
            "given more than once",
        ),
    ];
    for (url, message) in cases {
        let r = get(&url).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r.headers().get("location").is_none());
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = r.text().await.unwrap();
        assert!(body.contains(message), "{url}: {body}");
    }
    // A parameter name quoted in the page is escaped.
    let r = get(&format!("{}&%3Cb%3E=1&%3Cb%3E=2", good(&[], ""))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("&lt;b&gt;") && !body.contains("<b>"),
        "{body}"
    );
    // 128 bytes of state are fine.
    let ok = get(&good(&[("state", &"s".repeat(128))], "")).await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn access_token_checks_app_credentials_and_refusals_keep_the_code() {
    let sandbox = start().await;
    let code = oauth_code(&sandbox, &[]).await;
    let appid = sandbox.merchant().appid.clone();
    let secret = sandbox.app_secret().to_owned();
    let cases: Vec<ErrcodeCase<'_>> = vec![
        (
            vec![
                ("secret", &secret),
                ("code", &code),
                ("grant_type", "authorization_code"),
            ],
            41002,
            "appid missing",
        ),
        (
            vec![
                ("appid", "wx0000000000000000"),
                ("secret", &secret),
                ("code", &code),
                ("grant_type", "authorization_code"),
            ],
            40013,
            "invalid appid",
        ),
        (
            vec![
                ("appid", &appid),
                ("code", &code),
                ("grant_type", "authorization_code"),
            ],
            41004,
            "appsecret missing",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", "0123456789abcdef0123456789abcdef"),
                ("code", &code),
                ("grant_type", "authorization_code"),
            ],
            40125,
            "invalid appsecret",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", &secret),
                ("grant_type", "authorization_code"),
            ],
            41008,
            "missing code",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", &secret),
                ("code", &code),
                ("grant_type", "client_credential"),
            ],
            40002,
            "invalid grant_type",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", &secret),
                ("code", "0000000000000000000000000000000X"),
                ("grant_type", "authorization_code"),
            ],
            40029,
            "invalid code",
        ),
    ];
    for (pairs, errcode, errmsg) in cases {
        let (_, v) = exchange(&sandbox, "/sns/oauth2/access_token", &pairs).await;
        assert_errcode(&v, errcode, errmsg);
    }
    // None of the refusals consumed the code.
    assert_eq!(
        access_token(&sandbox, &code).await["openid"],
        sandbox.default_openid()
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn wx_login_code_yields_the_payer_at_jscode2session_once() {
    let sandbox = start().await;
    let code = sandbox.wx_login(None).unwrap();
    let (ct, v) = exchange(
        &sandbox,
        "/sns/jscode2session",
        &[
            ("appid", &sandbox.merchant().appid.clone()),
            ("secret", sandbox.app_secret()),
            ("js_code", &code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    // The body is JSON whatever the label (WeChat's gateway labels it text/plain).
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(v["openid"], sandbox.default_openid());
    let session_key = v["session_key"].as_str().unwrap();
    assert_eq!(session_key.len(), 24);
    assert!(v.get("errcode").is_none());
    assert_errcode(
        &jscode2session(&sandbox, &code).await,
        40163,
        "code been used",
    );

    let other = sandbox.wx_login(Some("oMiniPayer42")).unwrap();
    assert_ne!(other, code);
    assert_eq!(
        jscode2session(&sandbox, &other).await["openid"],
        "oMiniPayer42"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn jscode2session_checks_app_credentials() {
    let sandbox = start().await;
    let code = sandbox.wx_login(None).unwrap();
    let appid = sandbox.merchant().appid.clone();
    let secret = sandbox.app_secret().to_owned();
    let cases: Vec<ErrcodeCase<'_>> = vec![
        (
            vec![
                ("appid", "wx0000000000000000"),
                ("secret", &secret),
                ("js_code", &code),
                ("grant_type", "authorization_code"),
            ],
            40013,
            "invalid appid",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", "wrong"),
                ("js_code", &code),
                ("grant_type", "authorization_code"),
            ],
            40125,
            "invalid appsecret",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", &secret),
                ("code", &code),
                ("grant_type", "authorization_code"),
            ],
            41008,
            "missing code",
        ),
        (
            vec![("appid", &appid), ("secret", &secret), ("js_code", &code)],
            40002,
            "invalid grant_type",
        ),
        (
            vec![
                ("appid", &appid),
                ("secret", &secret),
                ("js_code", "nope"),
                ("grant_type", "authorization_code"),
            ],
            40029,
            "invalid code",
        ),
    ];
    for (pairs, errcode, errmsg) in cases {
        let (_, v) = exchange(&sandbox, "/sns/jscode2session", &pairs).await;
        assert_errcode(&v, errcode, errmsg);
    }
    assert_eq!(
        jscode2session(&sandbox, &code).await["openid"],
        sandbox.default_openid()
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_code_is_only_accepted_by_the_exchange_it_was_issued_for() {
    let sandbox = start().await;
    let oauth = oauth_code(&sandbox, &[]).await;
    let js = sandbox.wx_login(None).unwrap();
    let qf = qfpay_code(&sandbox, "http://shop.example/getcode", None).await;

    assert_errcode(
        &jscode2session(&sandbox, &oauth).await,
        40029,
        "invalid code",
    );
    assert_errcode(&access_token(&sandbox, &js).await, 40029, "invalid code");
    assert_errcode(&access_token(&sandbox, &qf).await, 40029, "invalid code");
    assert_errcode(&jscode2session(&sandbox, &qf).await, 40029, "invalid code");
    let v = qfpay_openid(&sandbox, &[("code", &oauth)]).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    let v = qfpay_openid(&sandbox, &[("code", &js)]).await;
    assert_eq!(v["respcd"], "1104", "{v}");

    // Each still works where it belongs.
    assert_eq!(
        access_token(&sandbox, &oauth).await["openid"],
        sandbox.default_openid()
    );
    assert_eq!(
        jscode2session(&sandbox, &js).await["openid"],
        sandbox.default_openid()
    );
    assert_eq!(
        qfpay_openid(&sandbox, &[("code", &qf)]).await["respcd"],
        "0000"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn wx_login_endpoint_issues_codes_with_open_cors() {
    let sandbox = start().await;
    let url = format!("{}/sandbox/wx-login", sandbox.base_url());
    let r = client()
        .post(&url)
        .header("origin", "http://page.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let code = r.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jscode2session(&sandbox, &code).await["openid"],
        sandbox.default_openid()
    );

    // An empty body is the default payer too; an openid picks another.
    let r = client().post(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client()
        .post(&url)
        .json(&json!({ "openid": "oFromThePage" }))
        .send()
        .await
        .unwrap();
    let code = r.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jscode2session(&sandbox, &code).await["openid"],
        "oFromThePage"
    );

    // Preflight.
    let r = client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://page.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    for (body, code) in [
        (r#"{"openid":"has space"}"#, "INVALID_OPENID"),
        (r#"{"openid":""}"#, "INVALID_OPENID"),
        (r#"{"openid":12}"#, "INVALID_REQUEST"),
        (r#"{"unknown":1}"#, "INVALID_REQUEST"),
        ("not json", "INVALID_REQUEST"),
    ] {
        let r = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], code, "{body}: {v}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn wx_login_method_refuses_a_malformed_openid() {
    let sandbox = start().await;
    let too_long = "o".repeat(65);
    for bad in ["", "o p", "o/x", too_long.as_str()] {
        assert!(
            matches!(sandbox.wx_login(Some(bad)), Err(SandboxError::Config(_))),
            "{bad:?}"
        );
    }
    assert!(sandbox.wx_login(Some(&"o".repeat(64))).is_ok());
    sandbox.shutdown().await;
}

/// The browser leg of QFPay's flow: the shop's signed URL, then the redirect's code.
fn qfpay_oauth_url(sandbox: &Sandbox, redirect_uri: &str, mchid: Option<&str>) -> String {
    let qf = sandbox.qfpay();
    let mut data = vec![
        ("app_code", qf.app_code.as_str()),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(m) = mchid {
        data.push(("mchid", m));
    }
    let sign = make_req_sign(&data, &qf.client_key);
    data.push(("sign", &sign));
    format!(
        "{}/tool/v1/get_weixin_oauth_code?{}",
        sandbox.base_url(),
        query(&data)
    )
}

async fn qfpay_code(sandbox: &Sandbox, redirect_uri: &str, extra: Option<&str>) -> String {
    let mut url = qfpay_oauth_url(sandbox, redirect_uri, None);
    if let Some(e) = extra {
        url.push('&');
        url.push_str(e);
    }
    let loc = location(&get(&url).await);
    assert!(loc.starts_with(redirect_uri), "{loc}");
    query_value(&loc, "code").unwrap()
}

/// The server leg: `get_weixin_openid` signed in the headers, as the seed's `get_open_id`.
async fn qfpay_openid(sandbox: &Sandbox, data: &[(&str, &str)]) -> Value {
    let qf = sandbox.qfpay();
    qfpay_openid_with(
        sandbox,
        data,
        Some(&qf.app_code),
        Some(&make_req_sign(data, &qf.client_key)),
    )
    .await
}

async fn qfpay_openid_with(
    sandbox: &Sandbox,
    data: &[(&str, &str)],
    app_code: Option<&str>,
    sign: Option<&str>,
) -> Value {
    let mut req = client().get(format!(
        "{}/tool/v1/get_weixin_openid?{}",
        sandbox.base_url(),
        query(data)
    ));
    if let Some(a) = app_code {
        req = req.header("X-QF-APPCODE", a);
    }
    if let Some(s) = sign {
        req = req.header("X-QF-SIGN", s);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn qfpay_oauth_code_redirects_and_get_weixin_openid_answers_once() {
    let sandbox = start().await;
    // The seed's example redirect target already has a query.
    let redirect = "http://xg.fshop.top/index.php/wap/pay/wxredirect?showwxpaytitle=1";
    let loc = location(&get(&qfpay_oauth_url(&sandbox, redirect, None)).await);
    assert!(loc.starts_with(&format!("{redirect}&code=")), "{loc}");
    let code = query_value(&loc, "code").unwrap();

    let v = qfpay_openid(&sandbox, &[("code", &code)]).await;
    assert_eq!(
        v,
        json!({
            "respcd": "0000",
            "respmsg": "",
            "resperr": "",
            "openid": sandbox.default_openid(),
        })
    );
    let again = qfpay_openid(&sandbox, &[("code", &code)]).await;
    assert_eq!(again["respcd"], "1104");
    assert!(
        again["resperr"].as_str().unwrap().contains("used"),
        "{again}"
    );
    assert!(again.get("openid").is_none());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn qfpay_sandbox_openid_is_outside_the_signature() {
    let sandbox = start().await;
    let code = qfpay_code(
        &sandbox,
        "https://shop.example/getcode",
        Some("sandbox_openid=oQfPayer7"),
    )
    .await;
    assert_eq!(
        qfpay_openid(&sandbox, &[("code", &code)]).await["openid"],
        "oQfPayer7"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn qfpay_oauth_code_refuses_bad_requests() {
    let sandbox = start().await;
    let qf = sandbox.qfpay().clone();
    let base = sandbox.base_url().to_owned();
    let good = qfpay_oauth_url(&sandbox, "https://shop.example/getcode", None);
    let unsigned = format!(
        "{base}/tool/v1/get_weixin_oauth_code?{}",
        query(&[
            ("app_code", &qf.app_code),
            ("redirect_uri", "https://shop.example/getcode")
        ])
    );
    let bad_redirect = {
        let data = [
            ("app_code", qf.app_code.as_str()),
            ("redirect_uri", "/getcode"),
        ];
        let sign = make_req_sign(&data, &qf.client_key);
        format!(
            "{base}/tool/v1/get_weixin_oauth_code?{}&sign={sign}",
            query(&data)
        )
    };
    let wrong_app = {
        let data = [
            ("app_code", "0123456789ABCDEF0123456789ABCDEF"),
            ("redirect_uri", "https://shop.example/getcode"),
        ];
        let sign = make_req_sign(&data, &qf.client_key);
        format!(
            "{base}/tool/v1/get_weixin_oauth_code?{}&sign={sign}",
            query(&data)
        )
    };
    let cases = [
        (good.replace("getcode&", "getcodeX&"), "1108"),
        (unsigned, "1108"),
        (format!("{good}&extra=1"), "1108"),
        (bad_redirect, "1104"),
        (wrong_app, "1104"),
        (
            qfpay_oauth_url(&sandbox, "https://shop.example/getcode", Some("M123")),
            "1104",
        ),
        (format!("{good}&sandbox_openid=bad%20id"), "1104"),
    ];
    for (url, respcd) in cases {
        let r = get(&url).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r.headers().get("location").is_none());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["respcd"], respcd, "{url}: {v}");
        assert!(!v["resperr"].as_str().unwrap().is_empty());
    }
    assert_eq!(get(&good).await.status(), StatusCode::FOUND);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn qfpay_get_weixin_openid_refuses_bad_requests_without_consuming_the_code() {
    let sandbox = start().await;
    let qf = sandbox.qfpay().clone();
    let code = qfpay_code(&sandbox, "https://shop.example/getcode", None).await;
    let data = [("code", code.as_str())];
    let sign = make_req_sign(&data, &qf.client_key);

    let v = qfpay_openid_with(&sandbox, &data, None, Some(&sign)).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    let v = qfpay_openid_with(&sandbox, &data, Some("WRONG"), Some(&sign)).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    let v = qfpay_openid_with(&sandbox, &data, Some(&qf.app_code), None).await;
    assert_eq!(v["respcd"], "1108", "{v}");
    let wrong_key = make_req_sign(&data, "not-the-client-key");
    let v = qfpay_openid_with(&sandbox, &data, Some(&qf.app_code), Some(&wrong_key)).await;
    assert_eq!(v["respcd"], "1108", "{v}");
    assert!(v.get("openid").is_none());
    // Signed over other parameters than those sent.
    let v = qfpay_openid_with(
        &sandbox,
        &[("code", &code), ("mchid", "M1")],
        Some(&qf.app_code),
        Some(&sign),
    )
    .await;
    assert_eq!(v["respcd"], "1108", "{v}");
    // Correctly signed, but an mchid this app_code does not have.
    let v = qfpay_openid(&sandbox, &[("code", &code), ("mchid", "M1")]).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    // No code; an unknown code.
    assert_eq!(qfpay_openid(&sandbox, &[]).await["respcd"], "1104");
    let v = qfpay_openid(&sandbox, &[("code", "unknown-code")]).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    assert!(v["resperr"].as_str().unwrap().contains("invalid"), "{v}");

    // A lower-case signature is the same signature.
    let v = qfpay_openid_with(
        &sandbox,
        &data,
        Some(&qf.app_code),
        Some(&sign.to_ascii_lowercase()),
    )
    .await;
    assert_eq!(v["respcd"], "0000", "{v}");
    assert_eq!(v["openid"], sandbox.default_openid());
    sandbox.shutdown().await;
}

fn node_available() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the shim's `wx.login` in Node (no DOM needed) and prints what `success`/`fail` got.
const WX_LOGIN_DRIVER: &str = r#"
"use strict";
const [base, openid] = process.argv.slice(1);
globalThis.window = globalThis;
globalThis.document = {
  currentScript: { src: base + "/sandbox/jsbridge.js" },
  readyState: "complete",
  addEventListener() {},
  dispatchEvent() {},
};
(async () => {
  const src = await (await fetch(base + "/sandbox/jsbridge.js")).text();
  new Function(src)();
  const res = await new Promise((resolve) => {
    let via = "none";
    const opts = {
      success: () => { via = "success"; },
      fail: () => { via = "fail"; },
      // complete runs last, after success or fail.
      complete: (r) => resolve({ via, ...r }),
    };
    if (openid) { opts.sandboxOpenid = openid; }
    window.wx.login(opts);
  });
  process.stdout.write(JSON.stringify(res));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
"#;

async fn drive_wx_login(base: &str, openid: &str) -> Value {
    let args = vec![
        "-e".to_owned(),
        WX_LOGIN_DRIVER.to_owned(),
        base.to_owned(),
        openid.to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn browser_shim_defines_wx_login() {
    let sandbox = start().await;
    let r = get(&format!("{}/sandbox/jsbridge.js", sandbox.base_url())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let js = r.text().await.unwrap();
    for needle in [
        "wx.login",
        "/sandbox/wx-login",
        "login:ok",
        "requestPayment",
        "getBrandWCPayRequest",
    ] {
        assert!(js.contains(needle), "{needle}");
    }
    if !node_available() {
        eprintln!("node not found: the shim's wx.login was not executed");
        sandbox.shutdown().await;
        return;
    }
    let res = drive_wx_login(sandbox.base_url(), "").await;
    assert_eq!(res["via"], "success", "{res}");
    assert_eq!(res["errMsg"], "login:ok");
    let code = res["code"].as_str().unwrap();
    assert_eq!(
        jscode2session(&sandbox, code).await["openid"],
        sandbox.default_openid()
    );

    let res = drive_wx_login(sandbox.base_url(), "oShimPayer").await;
    let code = res["code"].as_str().unwrap();
    assert_eq!(jscode2session(&sandbox, code).await["openid"], "oShimPayer");

    let res = drive_wx_login(sandbox.base_url(), "bad openid").await;
    assert_eq!(res["via"], "fail", "{res}");
    assert!(
        res["errMsg"]
            .as_str()
            .unwrap()
            .starts_with("login:fail INVALID_OPENID"),
        "{res}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn qfpay_with_an_mchid_requires_it_on_both_legs() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests().qfpay_mchid("MCH42"))
        .await
        .unwrap();
    assert_eq!(sandbox.qfpay().mchid.as_deref(), Some("MCH42"));
    let redirect = "https://shop.example/getcode";
    // Without the mchid, or with another one: refused.
    for mchid in [None, Some("MCH43")] {
        let r = get(&qfpay_oauth_url(&sandbox, redirect, mchid)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{mchid:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["respcd"], "1104");
    }
    let loc = location(&get(&qfpay_oauth_url(&sandbox, redirect, Some("MCH42"))).await);
    let code = query_value(&loc, "code").unwrap();
    let v = qfpay_openid(&sandbox, &[("code", &code)]).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    let v = qfpay_openid(&sandbox, &[("code", &code), ("mchid", "MCH43")]).await;
    assert_eq!(v["respcd"], "1104", "{v}");
    let v = qfpay_openid(&sandbox, &[("code", &code), ("mchid", "MCH42")]).await;
    assert_eq!(v["respcd"], "0000", "{v}");
    assert_eq!(v["openid"], sandbox.default_openid());
    sandbox.shutdown().await;
}
