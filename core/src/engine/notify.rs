//! `POST {prefix}/notify`: verify → dedupe → cross-check → PAID + outbox → the provider's reply.
//!
//! Nothing is acknowledged before its effect is durable: when the store fails, the reply is a
//! failure the upstream retries.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};

use crate::fields::{OutRefundNo, OutTradeNo};
use crate::order::{Order, OrderStatus, Transition};
use crate::provider::{PaymentNotification, PaymentReport, PaymentState, RejectionKind};
use crate::store::StoreError;

use super::{Alert, Inner};

pub(super) async fn handle(inner: &Inner, headers: &HeaderMap, body: &Bytes) -> Response<Bytes> {
    match inner.provider.verify_notification(headers, body).await {
        Ok(notification) => {
            let response = apply(inner, &notification).await;
            inner.metrics.notification_answered(response.status());
            response
        }
        Err(rejection) => {
            inner.metrics.notification_refused(rejection.kind);
            match rejection.kind {
                RejectionKind::Probe => {
                    tracing::info!("signature probe refused, as the upstream expects");
                }
                kind => tracing::warn!(?kind, message = %rejection.message, "notification refused"),
            }
            rejection.into_response()
        }
    }
}

pub(super) async fn apply(inner: &Inner, notification: &PaymentNotification) -> Response<Bytes> {
    let provider = &inner.provider;
    let event_id = notification.event_id.as_str();
    let report = &notification.report;
    match inner.store.has_notification(event_id).await {
        Ok(true) => {
            tracing::debug!(event_id, "duplicate notification acknowledged");
            return provider.acknowledge();
        }
        Ok(false) => {}
        Err(error) => return store_failure(inner, &error),
    }
    if let Some(refund) = &notification.refund {
        return apply_refund(inner, event_id, refund).await;
    }
    let Ok(out_trade_no) = OutTradeNo::try_from(report.out_trade_no.as_str()) else {
        // Signed by the upstream but not an order number we could have issued: retrying will
        // not change it, so record and acknowledge.
        tracing::error!(
            event_id,
            "verified notification with an invalid out_trade_no"
        );
        return match inner.store.record_notification(event_id, None).await {
            Ok(_) => provider.acknowledge(),
            Err(error) => store_failure(inner, &error),
        };
    };
    let order = match inner.store.get(&out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            let alert = Alert::UnknownOrder {
                out_trade_no: out_trade_no.as_str().to_owned(),
                paid: report.state == PaymentState::Paid,
                transaction_id: report.transaction_id.clone(),
            };
            return record_and_acknowledge(inner, event_id, &out_trade_no, alert).await;
        }
        Err(error) => return store_failure(inner, &error),
    };
    apply_report(inner, &order, report, Some(event_id)).await
}

/// Records a verified refund notification: the refund's new status with its event, or, for a
/// refund this store does not know or a report that does not match it, a mismatch for the
/// operator. Acknowledged in every case once recorded, so the upstream never retries a genuine
/// refund notification for a day; a store failure is the one reply that makes it retry.
async fn apply_refund(
    inner: &Inner,
    event_id: &str,
    report: &crate::provider::RefundReport,
) -> Response<Bytes> {
    let provider = &inner.provider;
    let order_number = report
        .out_trade_no
        .as_deref()
        .and_then(|no| OutTradeNo::try_from(no).ok());
    let refund = match OutRefundNo::try_from(report.out_refund_no.as_str()) {
        Ok(no) => match inner.store.get_refund(&no).await {
            Ok(refund) => refund,
            Err(error) => return store_failure(inner, &error),
        },
        Err(_) => None,
    };
    let Some(refund) = refund else {
        tracing::error!(
            event_id,
            out_refund_no = %report.out_refund_no,
            "verified refund notification for a refund this store does not have"
        );
        let alert = Alert::UnknownRefund {
            out_refund_no: report.out_refund_no.clone(),
        };
        return match order_number {
            Some(no) => record_and_acknowledge(inner, event_id, &no, alert).await,
            None => match inner.store.record_notification(event_id, None).await {
                Ok(_) => {
                    super::alerts::raise(inner, alert);
                    provider.acknowledge()
                }
                Err(error) => store_failure(inner, &error),
            },
        };
    };
    let order = match inner.store.get(&refund.out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            let error = StoreError::Corrupt(format!(
                "refund {} of missing order {}",
                refund.out_refund_no, refund.out_trade_no
            ));
            return store_failure(inner, &error);
        }
        Err(error) => return store_failure(inner, &error),
    };
    match super::refund::record_report(inner, &order, &refund, report, Some(event_id)).await {
        Ok(_) => provider.acknowledge(),
        Err(error) => store_failure(inner, &error),
    }
}

/// Applies what an upstream reported about `order` (from a notification with `event_id`, or
/// from a query): a mismatch is recorded and never marks the order paid; a payment marks it
/// `PAID` with its outbox event.
pub(super) async fn apply_report(
    inner: &Inner,
    order: &Order,
    report: &PaymentReport,
    event_id: Option<&str>,
) -> Response<Bytes> {
    let provider = &inner.provider;
    let out_trade_no = &order.out_trade_no;
    if let Some(mismatch) = cross_check(order, report, &provider.merchant()) {
        tracing::error!(out_trade_no = %out_trade_no, %mismatch, "upstream report does not match the order");
        // A payment that does not match its order needs an operator, not more polling: the
        // order leaves PENDING (so reconciliation and status polls stop re-querying it and
        // re-recording the mismatch) and the page learns it failed. FAILED → PAID stays
        // possible should a matching payment be reported later.
        if report.state == PaymentState::Paid
            && matches!(order.status, OrderStatus::Created | OrderStatus::Pending)
        {
            let failed = Transition::Failed {
                reason: format!("payment does not match the order: {mismatch}"),
            };
            match inner
                .store
                .transition(out_trade_no, order.status, failed)
                .await
            {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(error) => return store_failure(inner, &error),
            }
        }
        let alert = Alert::Mismatch {
            out_trade_no: out_trade_no.as_str().to_owned(),
            detail: mismatch,
        };
        return record_and_acknowledge(inner, event_id.unwrap_or_default(), out_trade_no, alert)
            .await;
    }
    match (&report.state, event_id) {
        (PaymentState::Paid, _) => mark_paid(inner, order, report, event_id).await,
        (other, Some(event_id)) => {
            tracing::info!(out_trade_no = %out_trade_no, state = ?other, "non-payment notification recorded");
            match inner
                .store
                .record_notification(event_id, Some(out_trade_no))
                .await
            {
                Ok(_) => provider.acknowledge(),
                Err(error) => store_failure(inner, &error),
            }
        }
        (_, None) => provider.acknowledge(),
    }
}

/// Marks `order` paid as `report` says, recording `event_id` in the same transaction; the
/// reply is the provider's acknowledgement once that is durable.
async fn mark_paid(
    inner: &Inner,
    order: &Order,
    report: &PaymentReport,
    event_id: Option<&str>,
) -> Response<Bytes> {
    let provider = &inner.provider;
    let Some(transaction_id) = report.transaction_id.clone() else {
        // Refusing it would have the upstream repeat the same incomplete notification for a
        // day. Where the upstream can be queried, acknowledge, record it for the operator and
        // leave the order open: reconciliation's query carries the transaction id and marks it
        // paid. Without a query API the repeat is the only way to learn more, so refuse.
        if !provider.can_query() {
            return provider
                .failure_reply(StatusCode::BAD_REQUEST, "payment without transaction_id");
        }
        let alert = Alert::Mismatch {
            out_trade_no: order.out_trade_no.as_str().to_owned(),
            detail: "a payment was reported without transaction_id; the order stays open \
                     until reconciliation queries it"
                .to_owned(),
        };
        return record_and_acknowledge(
            inner,
            event_id.unwrap_or_default(),
            &order.out_trade_no,
            alert,
        )
        .await;
    };
    let transition = Transition::Paid {
        transaction_id,
        paid_at: report.paid_at.unwrap_or_else(|| inner.clock.now()),
        payer: report.payer.clone(),
    };
    // A payment can race a close: CLOSED and FAILED orders may still become PAID. The order
    // may also have moved since it was read (a reconciler closing it just now): then re-read
    // its status from the conflict and try again, rather than dropping a real payment.
    let mut expected = match order.status {
        OrderStatus::Closed | OrderStatus::Failed => order.status,
        _ => OrderStatus::Pending,
    };
    let mut retries_left = 2;
    let result = loop {
        match inner
            .store
            .transition_with_notification(
                &order.out_trade_no,
                expected,
                transition.clone(),
                event_id,
            )
            .await
        {
            Err(StoreError::Conflict {
                actual: actual @ (OrderStatus::Pending | OrderStatus::Closed | OrderStatus::Failed),
                ..
            }) if retries_left > 0 && actual != expected => {
                retries_left -= 1;
                expected = actual;
            }
            result => break result,
        }
    };
    match result {
        Ok(outcome) => {
            if outcome.is_applied() {
                tracing::info!(out_trade_no = %order.out_trade_no, "order paid");
                inner.paid_signal.notify_one();
            }
            provider.acknowledge()
        }
        Err(StoreError::Conflict {
            actual: OrderStatus::Created,
            ..
        }) => paid_unprepared(inner, order, report, event_id).await,
        Err(StoreError::Conflict {
            actual: OrderStatus::Paid,
            ..
        }) => {
            // Paid already under another transaction id: keep the first, record the second.
            let alert = Alert::DoublePayment {
                out_trade_no: order.out_trade_no.as_str().to_owned(),
                transaction_id: report.transaction_id.clone(),
            };
            record_and_acknowledge(
                inner,
                event_id.unwrap_or_default(),
                &order.out_trade_no,
                alert,
            )
            .await
        }
        Err(error @ (StoreError::Conflict { .. } | StoreError::Impossible { .. })) => {
            tracing::error!(%error, "payment cannot be applied to the order");
            let alert = Alert::Mismatch {
                out_trade_no: order.out_trade_no.as_str().to_owned(),
                detail: format!("payment reported but not applicable: {error}"),
            };
            record_and_acknowledge(
                inner,
                event_id.unwrap_or_default(),
                &order.out_trade_no,
                alert,
            )
            .await
        }
        Err(error) => store_failure(inner, &error),
    }
}

/// A disagreement between the report and the order, in words; `None` when they agree.
/// A payment of an order still `CREATED`: the upstream issued its prepay but the store never
/// recorded it, and the payer paid anyway. The money is real, so the order becomes `PAID`
/// (with its event) and the operator gets a mismatch note saying why it skipped `PENDING`.
async fn paid_unprepared(
    inner: &Inner,
    order: &Order,
    report: &PaymentReport,
    event_id: Option<&str>,
) -> Response<Bytes> {
    let Some(transaction_id) = report.transaction_id.clone() else {
        return inner
            .provider
            .failure_reply(StatusCode::BAD_REQUEST, "payment without transaction_id");
    };
    let transition = Transition::PaidUnprepared {
        transaction_id,
        paid_at: report.paid_at.unwrap_or_else(|| inner.clock.now()),
        payer: report.payer.clone(),
    };
    match inner
        .store
        .transition_with_notification(
            &order.out_trade_no,
            OrderStatus::Created,
            transition,
            event_id,
        )
        .await
    {
        Ok(outcome) => {
            if outcome.is_applied() {
                tracing::warn!(out_trade_no = %order.out_trade_no, "order paid before its prepay was recorded");
                inner.paid_signal.notify_one();
            }
            let alert = Alert::Mismatch {
                out_trade_no: order.out_trade_no.as_str().to_owned(),
                detail: "paid while still CREATED: the prepay was issued upstream but never \
                         recorded here; the payment was accepted"
                    .to_owned(),
            };
            record_and_acknowledge(
                inner,
                event_id.unwrap_or_default(),
                &order.out_trade_no,
                alert,
            )
            .await
        }
        // Moved meanwhile (e.g. a concurrent precreate recorded its prepay): the upstream's
        // retry is handled again from the new status.
        Err(StoreError::Conflict { .. }) => inner
            .provider
            .failure_reply(StatusCode::CONFLICT, "the order changed meanwhile; retry"),
        Err(error) => store_failure(inner, &error),
    }
}

fn cross_check(
    order: &Order,
    report: &PaymentReport,
    merchant: &crate::provider::MerchantIdentity,
) -> Option<String> {
    fn differs(expected: Option<&str>, reported: Option<&str>) -> bool {
        matches!((expected, reported), (Some(e), Some(r)) if e != r)
    }
    let expected_appid = order.appid.as_deref().or(merchant.appid.as_deref());
    if differs(expected_appid, report.appid.as_deref()) {
        return Some(format!("appid {:?} differs", report.appid));
    }
    let expected_mchid = order.mchid.as_deref().or(merchant.mchid.as_deref());
    if differs(expected_mchid, report.mchid.as_deref()) {
        return Some(format!("mchid {:?} differs", report.mchid));
    }
    if report.state == PaymentState::Paid {
        match report.amount_total {
            Some(total) if total == order.amount.fen() => {}
            Some(total) => {
                return Some(format!(
                    "amount {total} fen differs from the order's {} fen",
                    order.amount.fen()
                ));
            }
            None => return Some("payment without an amount".to_owned()),
        }
    }
    if differs(Some(order.currency.as_str()), report.currency.as_deref()) {
        return Some(format!("currency {:?} differs", report.currency));
    }
    None
}

/// Records `alert` as the order's mismatch (and the notification as seen), raises it, and
/// acknowledges: retrying would not change a genuine report.
async fn record_and_acknowledge(
    inner: &Inner,
    event_id: &str,
    out_trade_no: &OutTradeNo,
    alert: Alert,
) -> Response<Bytes> {
    let detail = alert.detail();
    let recorded = async {
        inner.store.record_mismatch(out_trade_no, &detail).await?;
        if !event_id.is_empty() {
            inner
                .store
                .record_notification(event_id, Some(out_trade_no))
                .await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    match recorded {
        Ok(()) => {
            super::alerts::raise(inner, alert);
            inner.provider.acknowledge()
        }
        Err(error) => store_failure(inner, &error),
    }
}

fn store_failure(inner: &Inner, error: &StoreError) -> Response<Bytes> {
    tracing::error!(%error, "order store failed while handling a notification");
    inner.provider.failure_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable; retry later",
    )
}
