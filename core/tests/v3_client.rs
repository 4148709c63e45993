//! `V3Client` against loopback servers that sign (or forge, or withhold) their responses.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use wxpay_core::fields::{Amount, Currency, OutTradeNo};
use wxpay_core::v3::model::{PrepayAmount, PrepayPayer};
use wxpay_core::v3::sign::authorization_message;
use wxpay_core::v3::verify::{platform_message, verify_rsa_sha256};
use wxpay_core::v3::{
    ApiV3Key, ClientError, JsapiPrepayRequest, MerchantCredentials, MerchantPrivateKey,
    PlatformPublicKey, PlatformTrust, RetryPolicy, TradeState, V3Client, VerifyError,
};

const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000001";
const CERT_SERIAL: &str = "D7CE59D1F522D701";
const API_V3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";

fn read(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/vectors")
            .join(name),
    )
    .unwrap()
}

/// The published test key plays both parts: merchant and platform.
fn test_key() -> MerchantPrivateKey {
    MerchantPrivateKey::from_pem(&read("test_key_pkcs8.pem")).unwrap()
}

fn credentials() -> MerchantCredentials {
    MerchantCredentials::new(
        "1900000001",
        "wxd678efh567hg6787",
        "MERCHANTSERIAL",
        test_key(),
    )
    .unwrap()
}

fn public_key_trust() -> PlatformTrust {
    PlatformTrust::public_key(
        PlatformPublicKey::from_pem(KEY_ID, &read("test_pubkey.pem")).unwrap(),
    )
    .unwrap()
}

fn client(base_url: &str, trust: PlatformTrust) -> V3Client {
    V3Client::builder(credentials(), ApiV3Key::new(API_V3_KEY).unwrap(), trust)
        .base_url(base_url)
        .timeout(Duration::from_secs(2))
        .retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
        })
        .build()
        .unwrap()
}

fn now() -> String {
    time::OffsetDateTime::now_utc().unix_timestamp().to_string()
}

/// A response signed the way WeChat Pay signs, with `serial` naming the key.
fn signed(status: StatusCode, body: impl Into<Vec<u8>>, serial: &str) -> Response {
    let body = body.into();
    let timestamp = now();
    let nonce = "loopbacknonce";
    let signature = test_key().sign_base64(&platform_message(&timestamp, nonce, &body));
    (
        status,
        [
            ("Wechatpay-Timestamp", timestamp),
            ("Wechatpay-Nonce", nonce.to_owned()),
            ("Wechatpay-Signature", signature),
            ("Wechatpay-Serial", serial.to_owned()),
            (
                "Wechatpay-Signature-Type",
                "WECHATPAY2-SHA256-RSA2048".to_owned(),
            ),
            ("Request-ID", "req-123".to_owned()),
            ("Content-Type", "application/json".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// Checks the request's Authorization header as WeChat Pay would.
fn authorization_ok(method: &str, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(params) = value.strip_prefix("WECHATPAY2-SHA256-RSA2048 ") else {
        return false;
    };
    let field = |name: &str| {
        params.split(',').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.trim_matches('"').to_owned())
        })
    };
    let (Some(timestamp), Some(nonce), Some(signature), Some(mchid)) = (
        field("timestamp"),
        field("nonce_str"),
        field("signature"),
        field("mchid"),
    ) else {
        return false;
    };
    if mchid != "1900000001" || nonce.len() != 32 {
        return false;
    }
    let public = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        pem::parse(read("test_pubkey.pem")).unwrap().contents(),
    )
    .unwrap();
    let message = authorization_message(
        method,
        path_and_query,
        timestamp.parse().unwrap(),
        &nonce,
        body,
    );
    verify_rsa_sha256(&public, &message, &signature).is_ok()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

fn prepay_request() -> JsapiPrepayRequest {
    JsapiPrepayRequest {
        appid: "wxd678efh567hg6787".into(),
        mchid: "1900000001".into(),
        description: "Test order".try_into().unwrap(),
        out_trade_no: OutTradeNo::try_from("ORDER123456").unwrap(),
        time_expire: None,
        attach: None,
        notify_url: "https://shop.example.com/wxpay/notify".try_into().unwrap(),
        amount: PrepayAmount {
            total: Amount::from_fen(100).unwrap(),
            currency: Currency::cny(),
        },
        payer: PrepayPayer {
            openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".try_into().unwrap(),
        },
        scene_info: None,
    }
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn prepay_signs_the_request_and_verifies_the_response() {
    let router = Router::new().route(
        "/v3/pay/transactions/jsapi",
        post(|headers: HeaderMap, body: Bytes| async move {
            if !authorization_ok("POST", "/v3/pay/transactions/jsapi", &headers, &body) {
                return signed(
                    StatusCode::UNAUTHORIZED,
                    r#"{"code":"SIGN_ERROR","message":"bad"}"#,
                    KEY_ID,
                );
            }
            assert_eq!(headers.get("wechatpay-serial").unwrap(), KEY_ID);
            assert!(headers.get("user-agent").is_some());
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["amount"]["total"], 100);
            signed(
                StatusCode::OK,
                r#"{"prepay_id":"wx2014102720093955"}"#,
                KEY_ID,
            )
        }),
    );
    let base = serve(router).await;
    let client = client(&base, public_key_trust());
    let response = client.jsapi_prepay(&prepay_request()).await.unwrap();
    assert_eq!(response.prepay_id, "wx2014102720093955");
    let params = client.jsapi_params(&response.prepay_id);
    assert_eq!(params.package, "prepay_id=wx2014102720093955");
    assert_eq!(params.sign_type, "RSA");
}

#[tokio::test]
async fn query_signs_path_with_query_and_parses_the_transaction() {
    let router = Router::new().route(
        "/v3/pay/transactions/out-trade-no/{no}",
        get(|headers: HeaderMap, uri: axum::http::Uri| async move {
            let target = uri.path_and_query().unwrap().as_str().to_owned();
            assert_eq!(
                target,
                "/v3/pay/transactions/out-trade-no/ORDER123456?mchid=1900000001"
            );
            assert!(authorization_ok("GET", &target, &headers, b""));
            signed(
                StatusCode::OK,
                r#"{"appid":"wxd678efh567hg6787","mchid":"1900000001","out_trade_no":"ORDER123456","trade_state":"NOTPAY","trade_state_desc":"未支付","amount":{"total":100,"currency":"CNY"}}"#,
                KEY_ID,
            )
        }),
    );
    let client = client(&serve(router).await, public_key_trust());
    let transaction = client
        .query_by_out_trade_no(&OutTradeNo::try_from("ORDER123456").unwrap())
        .await
        .unwrap();
    assert_eq!(transaction.trade_state, TradeState::NotPay);
}

#[tokio::test]
async fn forged_and_unsigned_responses_are_refused() {
    let router = Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            post(|| async {
                let mut response = signed(StatusCode::OK, r#"{"prepay_id":"wx_original"}"#, KEY_ID);
                *response.body_mut() = axum::body::Body::from(r#"{"prepay_id":"wx_forged"}"#);
                response
            }),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{no}",
            get(|| async { (StatusCode::OK, r#"{"trade_state":"SUCCESS"}"#) }),
        );
    let client = client(&serve(router).await, public_key_trust());
    let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Verification(VerifyError::BadSignature)),
        "{err:?}"
    );
    assert!(err.may_have_taken_effect());
    let err = client
        .query_by_out_trade_no(&OutTradeNo::try_from("ORDER123456").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Verification(VerifyError::MissingHeader(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn close_accepts_a_signed_204_and_refuses_an_unsigned_one() {
    let router = Router::new()
        .route(
            "/v3/pay/transactions/out-trade-no/SIGNED1/close",
            post(|headers: HeaderMap, body: Bytes| async move {
                assert!(authorization_ok(
                    "POST",
                    "/v3/pay/transactions/out-trade-no/SIGNED1/close",
                    &headers,
                    &body
                ));
                assert_eq!(&body[..], br#"{"mchid":"1900000001"}"#);
                signed(StatusCode::NO_CONTENT, Vec::new(), KEY_ID)
            }),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/UNSIGNED1/close",
            post(|| async { StatusCode::NO_CONTENT }),
        );
    let client = client(&serve(router).await, public_key_trust());
    client
        .close(&OutTradeNo::try_from("SIGNED1").unwrap())
        .await
        .unwrap();
    let err = client
        .close(&OutTradeNo::try_from("UNSIGNED1").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Verification(_)), "{err:?}");
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let router = Router::new().route(
        "/v3/pay/transactions/jsapi",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            signed(StatusCode::OK, r#"{"prepay_id":"late"}"#, KEY_ID)
        }),
    );
    let base = serve(router).await;
    let client = V3Client::builder(
        credentials(),
        ApiV3Key::new(API_V3_KEY).unwrap(),
        public_key_trust(),
    )
    .base_url(base)
    .timeout(Duration::from_millis(200))
    .build()
    .unwrap();
    let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
    assert!(matches!(err, ClientError::Deadline(_)), "{err:?}");
    assert!(err.may_have_taken_effect());
}

#[tokio::test]
async fn server_errors_are_retried_with_identical_bodies_and_fresh_signatures() {
    /// The body and Authorization header of one attempt.
    type Attempt = (Vec<u8>, String);
    #[derive(Clone, Default)]
    struct Seen {
        count: Counter,
        bodies: Arc<std::sync::Mutex<Vec<Attempt>>>,
    }
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    let authorization = headers["authorization"].to_str().unwrap().to_owned();
                    seen.bodies
                        .lock()
                        .unwrap()
                        .push((body.to_vec(), authorization));
                    if seen.count.bump() < 3 {
                        return signed(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            r#"{"code":"SYSTEM_ERROR","message":"系统错误"}"#,
                            KEY_ID,
                        );
                    }
                    signed(StatusCode::OK, r#"{"prepay_id":"wx_third_time"}"#, KEY_ID)
                },
            ),
        )
        .with_state(seen.clone());
    let client = client(&serve(router).await, public_key_trust());
    let response = client.jsapi_prepay(&prepay_request()).await.unwrap();
    assert_eq!(response.prepay_id, "wx_third_time");
    let attempts = seen.bodies.lock().unwrap().clone();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|(body, _)| body == &attempts[0].0));
    assert_ne!(attempts[0].1, attempts[1].1, "each attempt is signed anew");
}

#[tokio::test]
async fn persistent_server_errors_end_in_an_api_error_that_may_have_taken_effect() {
    let count = Counter::default();
    let router = Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            post(|State(count): State<Counter>| async move {
                count.bump();
                signed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"code":"SYSTEM_ERROR","message":"系统错误"}"#,
                    KEY_ID,
                )
            }),
        )
        .with_state(count.clone());
    let client = client(&serve(router).await, public_key_trust());
    let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
    assert_eq!(count.get(), 3);
    let api = err.api().unwrap();
    assert_eq!(api.code, "SYSTEM_ERROR");
    assert!(err.may_have_taken_effect());
}

#[tokio::test]
async fn client_errors_are_typed_and_not_retried() {
    let count = Counter::default();
    let router = Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            post(|State(count): State<Counter>| async move {
                count.bump();
                signed(
                    StatusCode::BAD_REQUEST,
                    r#"{"code":"PARAM_ERROR","message":"无效的openid","detail":{"field":"/payer/openid"}}"#,
                    KEY_ID,
                )
            }),
        )
        .with_state(count.clone());
    let client = client(&serve(router).await, public_key_trust());
    let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
    assert_eq!(count.get(), 1);
    let api = err.api().unwrap();
    assert_eq!(api.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.code, "PARAM_ERROR");
    assert_eq!(api.message, "无效的openid");
    assert_eq!(api.request_id.as_deref(), Some("req-123"));
    assert!(api.detail.is_some());
    assert!(!err.may_have_taken_effect());
    assert!(err.to_string().contains("PARAM_ERROR"));
}

#[tokio::test]
async fn connection_refused_is_retried_for_writes_and_reported_as_not_sent() {
    // Bind then drop: nothing listens on this port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client(&base, public_key_trust());
    let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(!err.may_have_taken_effect());
}

fn encrypted_certificate_list() -> String {
    let pem = read("test_cert_D7CE59D1F522D701.pem");
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(API_V3_KEY.as_bytes()).unwrap();
    let nonce = "certnonce123";
    let sealed = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: pem.as_bytes(),
                aad: b"certificate",
            },
        )
        .unwrap();
    serde_json::json!({"data": [{
        "serial_no": CERT_SERIAL,
        "effective_time": "2021-04-27T16:55:23+08:00",
        "expire_time": "2031-04-25T16:55:23+08:00",
        "encrypt_certificate": {
            "algorithm": "AEAD_AES_256_GCM",
            "associated_data": "certificate",
            "nonce": nonce,
            "ciphertext": BASE64.encode(sealed),
        }
    }]})
    .to_string()
}

#[tokio::test]
async fn certificates_are_trusted_only_after_the_download_verifies() {
    let downloads = Counter::default();
    let router = Router::new()
        .route(
            "/v3/certificates",
            get(
                |State(downloads): State<Counter>, headers: HeaderMap| async move {
                    assert!(authorization_ok("GET", "/v3/certificates", &headers, b""));
                    downloads.bump();
                    signed(StatusCode::OK, encrypted_certificate_list(), CERT_SERIAL)
                },
            ),
        )
        .route(
            "/v3/pay/transactions/jsapi",
            post(|| async { signed(StatusCode::OK, r#"{"prepay_id":"wx_cert"}"#, CERT_SERIAL) }),
        )
        .with_state(downloads.clone());
    let client = client(
        &serve(router).await,
        PlatformTrust::certificates([]).unwrap(),
    );
    assert_eq!(
        client.refresh_certificates().await.unwrap(),
        vec![CERT_SERIAL]
    );
    assert_eq!(downloads.get(), 1);
    assert_eq!(
        client
            .jsapi_prepay(&prepay_request())
            .await
            .unwrap()
            .prepay_id,
        "wx_cert"
    );
}

#[tokio::test]
async fn a_download_with_a_bad_signature_trusts_nothing() {
    let router = Router::new().route(
        "/v3/certificates",
        get(|| async {
            let mut response = signed(StatusCode::OK, encrypted_certificate_list(), CERT_SERIAL);
            response
                .headers_mut()
                .insert("Wechatpay-Nonce", "tampered".parse().unwrap());
            response
        }),
    );
    let client = client(
        &serve(router).await,
        PlatformTrust::certificates([]).unwrap(),
    );
    let err = client.refresh_certificates().await.unwrap_err();
    assert!(matches!(err, ClientError::Verification(_)), "{err:?}");
    assert!(client.trust().certificate_serials().is_empty());
}

#[tokio::test]
async fn unknown_serials_trigger_one_rate_limited_refresh() {
    let downloads = Counter::default();
    let router = Router::new()
        .route(
            "/v3/certificates",
            get(|State(downloads): State<Counter>| async move {
                downloads.bump();
                signed(StatusCode::OK, encrypted_certificate_list(), CERT_SERIAL)
            }),
        )
        .route(
            "/v3/pay/transactions/jsapi",
            post(|| async { signed(StatusCode::OK, r#"{"prepay_id":"x"}"#, "FORGEDSERIAL") }),
        )
        .with_state(downloads.clone());
    let client = client(
        &serve(router).await,
        PlatformTrust::certificates([]).unwrap(),
    );
    for _ in 0..5 {
        let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Verification(VerifyError::UnknownSerial(_))
            ),
            "{err:?}"
        );
    }
    assert_eq!(
        downloads.get(),
        1,
        "one refresh per interval, however many forged serials"
    );
}

#[tokio::test]
async fn concurrent_refreshes_share_one_download() {
    let downloads = Counter::default();
    let router = Router::new()
        .route(
            "/v3/certificates",
            get(|State(downloads): State<Counter>| async move {
                downloads.bump();
                tokio::time::sleep(Duration::from_millis(100)).await;
                signed(StatusCode::OK, encrypted_certificate_list(), CERT_SERIAL)
            }),
        )
        .with_state(downloads.clone());
    let client = client(
        &serve(router).await,
        PlatformTrust::certificates([]).unwrap(),
    );
    let results = futures_join(&client, 8).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(downloads.get(), 1);
}

async fn futures_join(client: &V3Client, n: usize) -> Vec<Result<Vec<String>, ClientError>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = client.clone();
        tasks.push(tokio::spawn(
            async move { client.refresh_certificates().await },
        ));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn resource_not_exists_is_fine_in_public_key_mode() {
    let router = Router::new().route(
        "/v3/certificates",
        get(|| async {
            signed(
                StatusCode::NOT_FOUND,
                r#"{"code":"RESOURCE_NOT_EXISTS","message":"无可用的平台证书"}"#,
                KEY_ID,
            )
        }),
    );
    let base = serve(router).await;
    let both = PlatformTrust::public_key_and_certificates(
        PlatformPublicKey::from_pem(KEY_ID, &read("test_pubkey.pem")).unwrap(),
        [],
    )
    .unwrap();
    assert!(
        client(&base, both)
            .refresh_certificates()
            .await
            .unwrap()
            .is_empty()
    );
    let certificates_only = PlatformTrust::certificates([]).unwrap();
    let err = client(&base, certificates_only)
        .refresh_certificates()
        .await
        .unwrap_err();
    assert_eq!(err.api().unwrap().code, "RESOURCE_NOT_EXISTS");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let followed = Counter::default();
    let router = Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]) }),
        )
        .route(
            "/elsewhere",
            post({
                let followed = followed.clone();
                move || async move {
                    followed.bump();
                    signed(StatusCode::OK, r#"{"prepay_id":"wx-elsewhere"}"#, KEY_ID)
                }
            }),
        );
    let base = serve(router).await;
    let client = client(&base, public_key_trust());
    let err = client.jsapi_prepay(&prepay_request()).await.unwrap_err();
    assert_eq!(followed.get(), 0, "the redirect was followed");
    assert!(!format!("{err:?}").contains("wx-elsewhere"), "{err:?}");
}
