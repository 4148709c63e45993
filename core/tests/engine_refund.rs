//! The engine's refund flow over a scripted upstream: reserve before asking, close on a
//! definite refusal, keep PROCESSING when the outcome is unknown, settle from notifications and
//! the reconciler, and the admin routes' contract.

mod support;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};
use support::{RecordingEvents, call};
use time::OffsetDateTime;
use wxpay_core::engine::{AdminToken, Engine, RefundError, RefundRequest, Route};
use wxpay_core::fields::{Amount, OutRefundNo, OutTradeNo};
use wxpay_core::order::{NewOrder, Order, OrderStatus, Transition};
use wxpay_core::provider::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RefundReport,
};
use wxpay_core::refund::{Refund, RefundStatus};
use wxpay_core::store::{Event, MemoryStore, OrderStore};

const TOKEN: &str = "admin-token-0123456789abcdefghijklmnop";

/// An upstream whose refund answers are scripted; its notifications are trusted JSON (the
/// signature checks are the providers' own tests).
#[derive(Debug, Default)]
struct ScriptedUpstream {
    refund_answers: Mutex<VecDeque<Result<RefundStatus, ProviderError>>>,
    query_answers: Mutex<VecDeque<Result<RefundStatus, ProviderError>>>,
    refund_calls: Mutex<Vec<String>>,
    supported: bool,
}

impl ScriptedUpstream {
    fn refunding() -> Self {
        Self {
            supported: true,
            ..Self::default()
        }
    }

    fn answer_refund(&self, answer: Result<RefundStatus, ProviderError>) {
        self.refund_answers.lock().unwrap().push_back(answer);
    }

    fn answer_query(&self, answer: Result<RefundStatus, ProviderError>) {
        self.query_answers.lock().unwrap().push_back(answer);
    }

    fn refund_calls(&self) -> Vec<String> {
        self.refund_calls.lock().unwrap().clone()
    }

    fn report(order: &Order, refund: &Refund, status: RefundStatus) -> RefundReport {
        let mut report = RefundReport::new(refund.out_refund_no.as_str(), status);
        report.out_trade_no = Some(order.out_trade_no.to_string());
        report.refund_id = Some(format!("5030{}", refund.out_refund_no));
        report.amount = Some(refund.amount.fen());
        report.total = Some(order.amount.fen());
        report
    }
}

fn error(kind: ProviderErrorKind, code: &str) -> ProviderError {
    ProviderError {
        kind,
        upstream_code: Some(code.to_owned()),
        message: format!("scripted {code}"),
        may_have_taken_effect: !matches!(kind, ProviderErrorKind::Rejected),
    }
}

#[async_trait]
impl Provider for ScriptedUpstream {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn merchant(&self) -> MerchantIdentity {
        MerchantIdentity {
            appid: None,
            mchid: Some("1230000109".to_owned()),
        }
    }

    async fn prepay(&self, _: &Order, _: Option<IpAddr>) -> Result<Prepay, ProviderError> {
        Err(error(ProviderErrorKind::Local, "NOT_IN_THIS_TEST"))
    }

    fn client_params(&self, _: &Order, _: &str) -> Option<PaymentParams> {
        None
    }

    async fn verify_notification(
        &self,
        _: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        let value: Value = serde_json::from_slice(body).unwrap();
        let status = value["status"].as_str().unwrap().parse().unwrap();
        let mut refund = RefundReport::new(value["out_refund_no"].as_str().unwrap(), status);
        refund.out_trade_no = value["out_trade_no"].as_str().map(str::to_owned);
        refund.amount = value["amount"].as_u64();
        refund.mchid = value["mchid"].as_str().map(str::to_owned);
        refund.user_received_account = Some("支付用户零钱".to_owned());
        Ok(PaymentNotification {
            event_id: value["id"].as_str().unwrap().to_owned(),
            report: PaymentReport {
                out_trade_no: value["out_trade_no"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                state: PaymentState::Refunded,
                transaction_id: None,
                amount_total: None,
                currency: None,
                appid: None,
                mchid: None,
                payer: None,
                paid_at: None,
            },
            refund: Some(refund),
            details: value,
        })
    }

    fn acknowledge(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }

    fn failure_reply(&self, status: StatusCode, message: &str) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(message.to_owned()));
        *response.status_mut() = status;
        response
    }

    async fn query(&self, _: &Order) -> Result<PaymentReport, ProviderError> {
        Err(error(ProviderErrorKind::Unsupported, "UNSUPPORTED"))
    }

    async fn close(&self, _: &Order) -> Result<(), ProviderError> {
        Ok(())
    }

    fn refunds_supported(&self) -> bool {
        self.supported
    }

    async fn refund(&self, order: &Order, refund: &Refund) -> Result<RefundReport, ProviderError> {
        self.refund_calls
            .lock()
            .unwrap()
            .push(refund.out_refund_no.to_string());
        let answer = self
            .refund_answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(RefundStatus::Processing));
        answer.map(|status| Self::report(order, refund, status))
    }

    async fn query_refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<RefundReport, ProviderError> {
        let answer = self
            .query_answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(RefundStatus::Processing));
        answer.map(|status| Self::report(order, refund, status))
    }
}

struct Shop {
    engine: Engine,
    store: Arc<MemoryStore>,
    upstream: Arc<ScriptedUpstream>,
    events: Arc<RecordingEvents>,
}

fn shop(upstream: ScriptedUpstream) -> Shop {
    let store = Arc::new(MemoryStore::new());
    let upstream = Arc::new(upstream);
    let events = Arc::new(RecordingEvents::default());
    let engine = Engine::builder(upstream.clone(), store.clone())
        .admin_token(AdminToken::new(TOKEN).unwrap())
        .event_hook(events.clone())
        .reconcile(Duration::ZERO, Duration::from_secs(3600))
        .build()
        .unwrap();
    Shop {
        engine,
        store,
        upstream,
        events,
    }
}

/// A paid order of `fen` in `store`.
async fn paid_order(store: &MemoryStore, fen: u64) -> Order {
    let mut new = NewOrder::new(
        OutTradeNo::generate(),
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".try_into().unwrap(),
        Amount::from_fen(fen).unwrap(),
        "coffee".try_into().unwrap(),
    );
    new.mchid = Some("1230000109".to_owned());
    let no = store
        .insert_if_absent(new)
        .await
        .unwrap()
        .into_order()
        .out_trade_no;
    store
        .transition(
            &no,
            OrderStatus::Created,
            Transition::Prepared {
                prepay_id: "wx_prepay".to_owned(),
                expires_at: OffsetDateTime::now_utc() + time::Duration::hours(2),
            },
        )
        .await
        .unwrap();
    store
        .transition(
            &no,
            OrderStatus::Pending,
            Transition::Paid {
                transaction_id: format!("4200{no}"),
                paid_at: OffsetDateTime::now_utc(),
                payer: None,
            },
        )
        .await
        .unwrap()
        .into_order()
}

fn request(fen: u64) -> RefundRequest {
    RefundRequest::new(Amount::from_fen(fen).unwrap())
}

fn refunds_path(order: &Order) -> String {
    format!("/wxpay/orders/{}/refunds", order.out_trade_no)
}

fn auth() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

async fn post_refund(shop: &Shop, order: &Order, body: &Value) -> support::Reply {
    let (name, value) = auth();
    call(
        &shop.engine,
        Method::POST,
        &refunds_path(order),
        &[(name, &value), ("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_refund_is_reserved_then_accepted_and_settles_by_notification() {
    let shop = shop(ScriptedUpstream::refunding());
    let order = paid_order(&shop.store, 1000).await;
    let outcome = shop
        .engine
        .refund(&order.out_trade_no, request(300))
        .await
        .unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.refund.status, RefundStatus::Processing);
    assert!(
        outcome.refund.refund_id.is_some(),
        "the upstream's id is recorded"
    );
    assert_eq!(
        shop.upstream.refund_calls(),
        vec![outcome.refund.out_refund_no.to_string()]
    );
    let held = shop.store.get(&order.out_trade_no).await.unwrap().unwrap();
    assert_eq!((held.refund_held_fen, held.refunded_fen), (300, 0));

    let notification = json!({
        "id": "EV-refund-1", "status": "SUCCESS", "out_refund_no": outcome.refund.out_refund_no.as_str(),
        "out_trade_no": order.out_trade_no.as_str(), "amount": 300, "mchid": "1230000109",
    });
    for _ in 0..2 {
        let reply = call(
            &shop.engine,
            Method::POST,
            "/wxpay/notify",
            &[],
            notification.to_string(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "genuine refund notifications are acknowledged"
        );
    }
    let refund = shop
        .store
        .get_refund(&outcome.refund.out_refund_no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refund.status, RefundStatus::Success);
    assert_eq!(
        refund.user_received_account.as_deref(),
        Some("支付用户零钱")
    );
    let after = shop.store.get(&order.out_trade_no).await.unwrap().unwrap();
    assert_eq!((after.refund_held_fen, after.refunded_fen), (300, 300));

    let _tasks = shop.engine.spawn_background_tasks();
    let events = shop.events.wait_for_count(2).await;
    let refund_events: Vec<_> = events.iter().filter_map(Event::as_refund).collect();
    assert_eq!(refund_events.len(), 1, "{events:?}");
    assert_eq!(refund_events[0].status, RefundStatus::Success);
    assert_eq!(refund_events[0].out_refund_no, outcome.refund.out_refund_no);
}

#[tokio::test]
async fn a_definite_refusal_closes_the_refund_and_releases_its_amount() {
    let shop = shop(ScriptedUpstream::refunding());
    let order = paid_order(&shop.store, 1000).await;
    shop.upstream
        .answer_refund(Err(error(ProviderErrorKind::Rejected, "NOT_ENOUGH")));
    let err = shop
        .engine
        .refund(&order.out_trade_no, request(1000))
        .await
        .unwrap_err();
    let RefundError::Refused { refund, error } = err else {
        panic!("{err:?}")
    };
    assert_eq!(refund.status, RefundStatus::Closed);
    assert_eq!(error.upstream_code.as_deref(), Some("NOT_ENOUGH"));
    assert!(refund.failure.as_deref().unwrap().starts_with("NOT_ENOUGH"));
    let after = shop.store.get(&order.out_trade_no).await.unwrap().unwrap();
    assert_eq!(after.refund_held_fen, 0, "released");
    // The whole amount can be asked again.
    let again = shop
        .engine
        .refund(&order.out_trade_no, request(1000))
        .await
        .unwrap();
    assert_eq!(again.refund.status, RefundStatus::Processing);
}

#[tokio::test]
async fn an_unknown_outcome_stays_processing_until_the_reconciler_settles_it() {
    let shop = shop(ScriptedUpstream::refunding());
    let order = paid_order(&shop.store, 1000).await;
    shop.upstream
        .answer_refund(Err(error(ProviderErrorKind::Timeout, "TIMEOUT")));
    let outcome = shop
        .engine
        .refund(&order.out_trade_no, request(400))
        .await
        .unwrap();
    assert_eq!(outcome.refund.status, RefundStatus::Processing);
    assert_eq!(outcome.refund.refund_id, None);
    assert_eq!(
        shop.store
            .get(&order.out_trade_no)
            .await
            .unwrap()
            .unwrap()
            .refund_held_fen,
        400,
        "still held: the upstream may have taken it"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    shop.upstream.answer_query(Ok(RefundStatus::Success));
    let report = shop.engine.reconcile().await;
    assert_eq!(
        (report.refunds.checked, report.refunds.settled),
        (1, 1),
        "{report:?}"
    );
    let refund = shop
        .store
        .get_refund(&outcome.refund.out_refund_no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refund.status, RefundStatus::Success);
}

#[tokio::test]
async fn a_refund_the_upstream_never_recorded_is_submitted_again_by_the_reconciler() {
    let shop = shop(ScriptedUpstream::refunding());
    let order = paid_order(&shop.store, 1000).await;
    // As after a crash between the reservation and the upstream call.
    shop.upstream
        .answer_refund(Err(error(ProviderErrorKind::Transport, "CONNECT")));
    let outcome = shop
        .engine
        .refund(&order.out_trade_no, request(250))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    shop.upstream.answer_query(Err(error(
        ProviderErrorKind::Rejected,
        "RESOURCE_NOT_EXISTS",
    )));
    let report = shop.engine.reconcile().await;
    assert_eq!(report.refunds.resubmitted, 1, "{report:?}");
    let no = outcome.refund.out_refund_no.to_string();
    assert_eq!(
        shop.upstream.refund_calls(),
        vec![no.clone(), no],
        "the same number again"
    );
    let refund = shop
        .store
        .get_refund(&outcome.refund.out_refund_no)
        .await
        .unwrap()
        .unwrap();
    assert!(refund.refund_id.is_some());
}

#[tokio::test]
async fn refunds_of_an_upstream_without_a_refund_api_are_refused_before_anything_is_stored() {
    let shop = shop(ScriptedUpstream::default());
    let order = paid_order(&shop.store, 1000).await;
    let err = shop
        .engine
        .refund(&order.out_trade_no, request(1))
        .await
        .unwrap_err();
    assert!(matches!(err, RefundError::NotSupported(_)), "{err:?}");
    assert!(
        shop.store
            .refunds_for_order(&order.out_trade_no)
            .await
            .unwrap()
            .is_empty()
    );
    let reply = post_refund(&shop, &order, &json!({"amount": 1})).await;
    reply.assert_error(StatusCode::NOT_IMPLEMENTED, "REFUND_NOT_SUPPORTED");
}

#[tokio::test]
async fn unknown_and_mismatched_refund_notifications_are_recorded_and_acknowledged() {
    let shop = shop(ScriptedUpstream::refunding());
    let order = paid_order(&shop.store, 1000).await;
    let unknown = json!({
        "id": "EV-unknown", "status": "SUCCESS", "out_refund_no": "R-nobody-knows",
        "out_trade_no": order.out_trade_no.as_str(), "amount": 5,
    });
    let reply = call(
        &shop.engine,
        Method::POST,
        "/wxpay/notify",
        &[],
        unknown.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(shop.store.has_notification("EV-unknown").await.unwrap());
    let mismatches = shop.store.mismatches(&order.out_trade_no).await.unwrap();
    assert!(
        mismatches[0].detail.contains("unknown refund"),
        "{mismatches:?}"
    );

    let outcome = shop
        .engine
        .refund(&order.out_trade_no, request(100))
        .await
        .unwrap();
    let wrong_amount = json!({
        "id": "EV-wrong", "status": "SUCCESS", "out_refund_no": outcome.refund.out_refund_no.as_str(),
        "out_trade_no": order.out_trade_no.as_str(), "amount": 999,
    });
    let reply = call(
        &shop.engine,
        Method::POST,
        "/wxpay/notify",
        &[],
        wrong_amount.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let refund = shop
        .store
        .get_refund(&outcome.refund.out_refund_no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refund.status,
        RefundStatus::Processing,
        "a mismatch changes nothing"
    );
    assert_eq!(
        shop.store
            .mismatches(&order.out_trade_no)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn the_refund_routes_need_the_admin_token_and_answer_the_documented_codes() {
    let shop = shop(ScriptedUpstream::refunding());
    let order = paid_order(&shop.store, 1000).await;
    assert!(shop.engine.routes().contains(&Route::Refunds));
    assert_eq!(
        shop.engine.route(&Method::GET, &refunds_path(&order)),
        Some(Route::Refunds)
    );

    for headers in [
        vec![("content-type", "application/json")],
        vec![
            ("content-type", "application/json"),
            (
                "authorization",
                "Bearer wrong-token-0123456789abcdefghijklmn",
            ),
        ],
        vec![
            ("content-type", "application/json"),
            ("authorization", TOKEN),
        ],
    ] {
        let reply = call(
            &shop.engine,
            Method::POST,
            &refunds_path(&order),
            &headers,
            r#"{"amount":1}"#,
        )
        .await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    assert!(
        shop.store
            .refunds_for_order(&order.out_trade_no)
            .await
            .unwrap()
            .is_empty()
    );

    let created = post_refund(
        &shop,
        &order,
        &json!({"amount": 300, "reason": "破损", "out_refund_no": "R-route-1"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json());
    let body = created.json();
    assert_eq!(body["out_refund_no"], "R-route-1");
    assert_eq!(body["out_trade_no"], order.out_trade_no.as_str());
    assert_eq!(body["amount"], 300);
    assert_eq!(body["reason"], "破损");
    assert_eq!(body["status"], "PROCESSING");

    let again = post_refund(
        &shop,
        &order,
        &json!({"amount": 300, "out_refund_no": "R-route-1"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["out_refund_no"], "R-route-1");
    assert_eq!(
        shop.upstream.refund_calls().len(),
        1,
        "the same number is not sent twice"
    );
    post_refund(
        &shop,
        &order,
        &json!({"amount": 301, "out_refund_no": "R-route-1"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "REFUND_NUMBER_REUSED");

    post_refund(&shop, &order, &json!({"amount": 701}))
        .await
        .assert_error(StatusCode::CONFLICT, "REFUND_EXCEEDS_PAID");
    for bad in [
        json!({"amount": 0}),
        json!({"amount": 1.5}),
        json!({"amount": "5"}),
        json!({"amount": -1}),
        json!({}),
    ] {
        let reply = post_refund(&shop, &order, &bad).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {:?}",
            reply.json()
        );
    }
    let long_reason = "退".repeat(81);
    post_refund(&shop, &order, &json!({"amount": 1, "reason": long_reason}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "INVALID_FIELD");

    let unpaid = {
        let new = NewOrder::new(
            OutTradeNo::generate(),
            "openid_x".try_into().unwrap(),
            Amount::from_fen(5).unwrap(),
            "tea".try_into().unwrap(),
        );
        shop.store.insert_if_absent(new).await.unwrap().into_order()
    };
    post_refund(&shop, &unpaid, &json!({"amount": 1}))
        .await
        .assert_error(StatusCode::CONFLICT, "ORDER_NOT_PAID");
    let mut missing = unpaid.clone();
    missing.out_trade_no = OutTradeNo::generate();
    post_refund(&shop, &missing, &json!({"amount": 1}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");

    shop.upstream
        .answer_refund(Err(error(ProviderErrorKind::Rejected, "PARAM_ERROR")));
    let refused = post_refund(&shop, &order, &json!({"amount": 10})).await;
    let body = refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "REFUND_REFUSED");
    assert_eq!(body["upstream_code"], "PARAM_ERROR");
    assert_eq!(body["refund"]["status"], "CLOSED");

    let (name, value) = auth();
    let listed = call(
        &shop.engine,
        Method::GET,
        &refunds_path(&order),
        &[(name, &value)],
        "",
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let body = listed.json();
    assert_eq!(body["amount"], 1000);
    assert_eq!(body["refund_held"], 300);
    assert_eq!(body["refundable"], 700);
    assert_eq!(body["refunds"].as_array().unwrap().len(), 2);
    let unauthorised = call(&shop.engine, Method::GET, &refunds_path(&order), &[], "").await;
    unauthorised.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let deleted = call(
        &shop.engine,
        Method::DELETE,
        &refunds_path(&order),
        &[(name, &value)],
        "",
    )
    .await;
    deleted.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn without_an_admin_token_the_refund_routes_are_not_mounted() {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::new(ScriptedUpstream::refunding()), store.clone())
        .build()
        .unwrap();
    assert!(!engine.routes().contains(&Route::Refunds));
    assert_eq!(
        engine.route(&Method::POST, "/wxpay/orders/ORDER123456/refunds"),
        None
    );
    assert!(AdminToken::new("too-short").is_err());
    let token = AdminToken::new(TOKEN).unwrap();
    assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    // The engine API itself needs no token: it is the app's own code calling.
    let order = paid_order(&store, 10).await;
    let outcome = engine
        .refund(&order.out_trade_no, request(10))
        .await
        .unwrap();
    assert_eq!(outcome.refund.amount.fen(), 10);
    let _ = OutRefundNo::generate();
}
