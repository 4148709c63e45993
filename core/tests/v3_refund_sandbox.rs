//! API v3 refunds end to end against the sandbox: the signed refund call, the encrypted and
//! signed `REFUND.*` notifications on the notify route, an injected refusal, a lost answer
//! finished by the reconciler, and an abnormal refund an operator resolves.

mod support;

use std::time::Duration;

use support::{Harness, wait_until};
use wxpay_core::engine::{RefundError, RefundRequest};
use wxpay_core::fields::{Amount, OutRefundNo, OutTradeNo, RefundReason};
use wxpay_core::refund::{Refund, RefundStatus};
use wxpay_core::store::{Event, OrderStore};
use wxpay_sandbox::{RefundBehaviour, RefundOutcome, RefundState};

fn request(fen: u64, no: &str) -> RefundRequest {
    RefundRequest {
        amount: Amount::from_fen(fen).unwrap(),
        reason: Some(RefundReason::try_from("damaged in transit").unwrap()),
        out_refund_no: Some(OutRefundNo::try_from(no).unwrap()),
    }
}

fn order_no(no: &str) -> OutTradeNo {
    OutTradeNo::try_from(no).unwrap()
}

async fn refund_now(h: &Harness, no: &str) -> Refund {
    h.store
        .get_refund(&OutRefundNo::try_from(no).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// Polls the store until the refund `no` reaches `status`.
async fn wait_for_status(h: &Harness, no: &str, status: RefundStatus) -> Refund {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let refund = refund_now(h, no).await;
        if refund.status == status {
            return refund;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refund {no} stayed {:?}, expected {status}",
            refund.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_settle_by_signed_notifications() {
    let h = Harness::start().await;
    let paid = h.paid_order("V3REFUND0001", 1000).await;

    let first = h
        .engine
        .refund(&order_no("V3REFUND0001"), request(300, "V3R0001A"))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.refund.status, RefundStatus::Processing);
    assert!(
        first.refund.refund_id.is_some(),
        "the upstream's refund id is kept"
    );
    let second = h
        .engine
        .refund(&order_no("V3REFUND0001"), request(700, "V3R0001B"))
        .await
        .unwrap();
    assert!(second.created);

    let a = wait_for_status(&h, "V3R0001A", RefundStatus::Success).await;
    let b = wait_for_status(&h, "V3R0001B", RefundStatus::Success).await;
    for refund in [&a, &b] {
        assert!(refund.succeeded_at.is_some());
        assert_eq!(
            refund.user_received_account.as_deref(),
            Some("支付用户零钱")
        );
    }
    let order = h.store.order("V3REFUND0001").await;
    assert_eq!(order.refunded_fen, 1000);
    assert!(order.is_fully_refunded());
    assert_eq!(order.transaction_id, paid.transaction_id);

    // Nothing is left: the store refuses before the upstream is asked.
    let over = h
        .engine
        .refund(&order_no("V3REFUND0001"), request(1, "V3R0001C"))
        .await
        .unwrap_err();
    assert!(matches!(over, RefundError::ExceedsPaid { .. }), "{over:?}");
    assert_eq!(h.sandbox.refunds().len(), 2);

    // The notifications were verified, acknowledged with 204 and recorded once each.
    let refund_events: Vec<Event> = h
        .store
        .all_events("V3REFUND0001")
        .await
        .into_iter()
        .filter(|e| e.as_refund().is_some())
        .collect();
    assert_eq!(refund_events.len(), 2, "{refund_events:?}");
    let acknowledged = h
        .log
        .seen()
        .iter()
        .filter(|seen| seen.status == http::StatusCode::NO_CONTENT)
        .count();
    assert_eq!(acknowledged, 3, "one payment and two refund notifications");
    h.log.assert_no_violation();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_closes_the_refund_and_releases_its_amount() {
    let h = Harness::start().await;
    h.paid_order("V3REFUSED001", 500).await;
    h.sandbox.set_refund_behaviour(RefundBehaviour {
        refuse_next: 1,
        ..RefundBehaviour::default()
    });
    let refused = h
        .engine
        .refund(&order_no("V3REFUSED001"), request(500, "V3R0002A"))
        .await
        .unwrap_err();
    let RefundError::Refused { refund, error } = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(refund.status, RefundStatus::Closed);
    assert_eq!(error.upstream_code.as_deref(), Some("NOT_ENOUGH"));
    assert!(refund.failure.as_deref().unwrap().starts_with("NOT_ENOUGH"));
    assert_eq!(h.store.order("V3REFUSED001").await.refund_held_fen, 0);

    // The released amount can be refunded with a new number.
    let retry = h
        .engine
        .refund(&order_no("V3REFUSED001"), request(500, "V3R0002B"))
        .await
        .unwrap();
    assert!(retry.created);
    wait_for_status(&h, "V3R0002B", RefundStatus::Success).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_stays_processing_until_the_reconciler_queries_it() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| b.reconcile(Duration::ZERO, Duration::from_secs(3600)))
        .start()
        .await;
    // The notify URL is closed, so pay the order through the reconciler too.
    let reply = h.precreate_ok("V3LOSTANS001", 800).await;
    h.pay(&reply).await;
    let report = h.engine.reconcile().await;
    assert_eq!(report.paid, 1, "{report:?}");

    h.sandbox.set_refund_behaviour(RefundBehaviour {
        // Every attempt of the client's retries loses its answer.
        lose_answer_next: 10,
        ..RefundBehaviour::default()
    });
    let outcome = h
        .engine
        .refund(&order_no("V3LOSTANS001"), request(800, "V3R0003A"))
        .await
        .unwrap();
    assert_eq!(outcome.refund.status, RefundStatus::Processing);
    assert_eq!(outcome.refund.refund_id, None);
    // The sandbox took it; its notification cannot arrive.
    wait_until("the sandbox settles the refund", || {
        h.sandbox
            .refunds()
            .iter()
            .any(|r| r.out_refund_no == "V3R0003A" && r.state == RefundState::Success)
            .then_some(())
    })
    .await;
    let report = h.engine.reconcile().await;
    assert_eq!(report.refunds.checked, 1, "{report:?}");
    assert_eq!(report.refunds.settled, 1, "{report:?}");
    let refund = refund_now(&h, "V3R0003A").await;
    assert_eq!(refund.status, RefundStatus::Success);
    assert!(refund.refund_id.is_some());
    assert_eq!(h.store.order("V3LOSTANS001").await.refunded_fen, 800);
    assert_eq!(h.sandbox.refunds().len(), 1, "never submitted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abnormal_refund_holds_its_amount_until_an_operator_resolves_it() {
    let h = Harness::start().await;
    h.paid_order("V3ABNORMAL01", 600).await;
    h.sandbox.set_refund_behaviour(RefundBehaviour {
        outcome: RefundOutcome::Abnormal,
        ..RefundBehaviour::default()
    });
    h.engine
        .refund(&order_no("V3ABNORMAL01"), request(600, "V3R0004A"))
        .await
        .unwrap();
    let abnormal = wait_for_status(&h, "V3R0004A", RefundStatus::Abnormal).await;
    assert!(abnormal.failure.as_deref().unwrap().contains("ABNORMAL"));
    let order = h.store.order("V3ABNORMAL01").await;
    assert_eq!(order.refund_held_fen, 600);
    assert_eq!(order.refunded_fen, 0);

    // The operator pays it back another way in the merchant platform.
    h.sandbox
        .settle_refund("V3R0004A", RefundState::Success)
        .unwrap();
    wait_for_status(&h, "V3R0004A", RefundStatus::Success).await;
    assert_eq!(h.store.order("V3ABNORMAL01").await.refunded_fen, 600);
}
