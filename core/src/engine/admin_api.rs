//! The operator's JSON API under `{prefix}/admin/`, behind the admin token like the refund
//! routes: the order list, one order with its history, the outbox backlog, what needs
//! attention, the metrics, and the actions `query`, `close` and `redeliver`. Every answer carries `Cache-Control: no-store`; every
//! action is logged (target `wxpay::admin`) with what it changed, never with the token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fields::OutTradeNo;
use crate::order::{Order, OrderStatus, Transition};
use crate::store::{Event, ListCursor, OrderFilter};

use super::{Inner, Route, admin, notify, reply, status};

/// The most bytes an action's body may have (actions take none; a small body is tolerated).
pub(super) const ACTION_BODY_LIMIT: usize = 1024;

/// The longest page of the order list, and the default.
const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;

/// The most undelivered events counted for the outbox backlog.
const BACKLOG_COUNT_LIMIT: u32 = 10_000;

/// The route of `rest`, the path after `{prefix}/admin`.
pub(super) fn route(rest: &str) -> Option<Route> {
    match rest {
        "/orders" => Some(Route::AdminOrders),
        "/outbox" => Some(Route::AdminOutbox),
        "/attention" => Some(Route::AdminAttention),
        "/metrics" => Some(Route::AdminMetrics),
        "/console" => Some(Route::AdminConsole),
        "/console/console.js" | "/console/console.css" => Some(Route::AdminConsoleAsset),
        _ => {
            let tail = rest.strip_prefix("/orders/")?;
            match tail.split_once('/') {
                None if !tail.is_empty() => Some(Route::AdminOrder),
                Some((number, "query" | "close" | "redeliver")) if !number.is_empty() => {
                    Some(Route::AdminOrderAction)
                }
                _ => None,
            }
        }
    }
}

fn no_store(mut response: Response<Bytes>) -> Response<Bytes> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn rfc3339(at: OffsetDateTime) -> Value {
    at.format(&Rfc3339).map_or(Value::Null, Value::String)
}

pub(super) async fn handle(
    inner: &Inner,
    route: Route,
    path: &str,
    request: &Request<Bytes>,
) -> Response<Bytes> {
    let Some(token) = &inner.admin_token else {
        return reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such wxpay route");
    };
    if !token.authorizes(request.headers()) {
        tracing::warn!(target: "wxpay::admin", "admin route refused: missing or wrong token");
        return no_store(admin::unauthorized());
    }
    let rest = path
        .strip_prefix(inner.settings.prefix.as_str())
        .and_then(|rest| rest.strip_prefix("/admin/orders/"))
        .unwrap_or_default();
    let response = match route {
        Route::AdminOrders => list(inner, request.uri().query().unwrap_or("")).await,
        Route::AdminOutbox => outbox(inner).await,
        Route::AdminAttention => attention(inner).await,
        Route::AdminMetrics => super::metrics::scrape(inner).await,
        Route::AdminOrder => match admin::order_number(rest) {
            Ok(no) => detail(inner, &no).await,
            Err(error) => reply::field_error(&error),
        },
        Route::AdminOrderAction => {
            let (number, action) = rest.split_once('/').unwrap_or((rest, ""));
            match admin::order_number(number) {
                Ok(no) => act(inner, &no, action).await,
                Err(error) => reply::field_error(&error),
            }
        }
        _ => reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such wxpay route"),
    };
    no_store(response)
}

// ---------------------------------------------------------------------------------------------
// The order list

fn bad_query(message: impl Into<String>) -> Response<Bytes> {
    reply::error(StatusCode::BAD_REQUEST, "INVALID_QUERY", message)
}

/// The page cursor as the list answers it: URL-safe base64 of `created_at_millis:number`.
fn encode_cursor(cursor: &ListCursor) -> String {
    let millis = crate::order::to_millis(cursor.created_at);
    URL_SAFE_NO_PAD.encode(format!("{millis}:{}", cursor.out_trade_no))
}

fn decode_cursor(text: &str) -> Option<ListCursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (millis, number) = raw.split_once(':')?;
    let millis: i128 = millis.parse().ok()?;
    Some(ListCursor {
        created_at: OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()?,
        out_trade_no: OutTradeNo::try_from(number).ok()?,
    })
}

async fn list(inner: &Inner, query: &str) -> Response<Bytes> {
    let mut filter = OrderFilter::default();
    let mut limit = DEFAULT_PAGE;
    let mut cursor = None;
    for (key, value) in url_pairs(query) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "status" => match value.parse::<OrderStatus>() {
                Ok(status) => filter.status = Some(status),
                Err(_) => return bad_query(format!("unknown status {value:?}")),
            },
            "created_from" | "created_before" => {
                let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) else {
                    return bad_query(format!("{key} must be an RFC 3339 time"));
                };
                if key == "created_from" {
                    filter.created_from = Some(at);
                } else {
                    filter.created_before = Some(at);
                }
            }
            "prefix" => filter.number_prefix = Some(value.to_owned()),
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => return bad_query(format!("limit must be 1 to {MAX_PAGE}")),
            },
            "cursor" => match decode_cursor(value) {
                Some(decoded) => cursor = Some(decoded),
                None => return bad_query("cursor is not one this list gave"),
            },
            other => return bad_query(format!("unknown parameter {other:?}")),
        }
    }
    let orders = match inner
        .store
        .list_orders(&filter, cursor.as_ref(), limit)
        .await
    {
        Ok(orders) => orders,
        Err(error) => {
            tracing::error!(%error, "listing orders failed");
            return reply::store_unavailable();
        }
    };
    let next_cursor = (orders.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| {
            orders
                .last()
                .map(|last| encode_cursor(&ListCursor::of(last)))
        })
        .flatten();
    reply::json(
        StatusCode::OK,
        &json!({
            "orders": orders.iter().map(status::operator_json).collect::<Vec<_>>(),
            "next_cursor": next_cursor,
        }),
    )
}

/// The `key=value` pairs of a query string, percent-decoded (`+` is a space).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// One order

fn event_json(event: &Event) -> Value {
    let kind = match event {
        Event::Paid(_) => "PAID",
        Event::Refund(_) => "REFUND",
    };
    json!({
        "event_id": event.event_id(),
        "kind": kind,
        "created_at": rfc3339(event.created_at()),
        "delivered_at": event.delivered_at().map_or(Value::Null, rfc3339),
    })
}

async fn detail(inner: &Inner, no: &OutTradeNo) -> Response<Bytes> {
    let store = &inner.store;
    let order = match store.get(no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return reply::error(
                StatusCode::NOT_FOUND,
                "ORDER_NOT_FOUND",
                format!("no order {no}"),
            );
        }
        Err(_) => return reply::store_unavailable(),
    };
    let (refunds, mismatches, events, notifications) = match (
        store.refunds_for_order(no).await,
        store.mismatches(no).await,
        store.events_for_order(no).await,
        store.notifications_for_order(no).await,
    ) {
        (Ok(refunds), Ok(mismatches), Ok(events), Ok(notifications)) => {
            (refunds, mismatches, events, notifications)
        }
        _ => return reply::store_unavailable(),
    };
    let mismatches: Vec<Value> = mismatches
        .iter()
        .map(|m| {
            json!({
                "kind": super::alerts::mismatch_kind(&m.detail),
                "detail": m.detail,
                "recorded_at": rfc3339(m.recorded_at),
            })
        })
        .collect();
    let notifications: Vec<Value> = notifications
        .iter()
        .map(|n| json!({"event_id": n.event_id, "received_at": rfc3339(n.received_at)}))
        .collect();
    reply::json(
        StatusCode::OK,
        &json!({
            "order": status::operator_json(&order),
            "refunds": refunds,
            "mismatches": mismatches,
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "notifications": notifications,
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Needs attention

/// The most rows of each kind the attention list shows.
const ATTENTION_LIMIT: u32 = 100;

async fn attention(inner: &Inner) -> Response<Bytes> {
    let store = &inner.store;
    let (mismatches, abnormal, undelivered) = match (
        store.recent_mismatches(ATTENTION_LIMIT).await,
        store
            .list_stale_refunds(
                crate::refund::RefundStatus::Abnormal,
                inner.clock.now() + time::Duration::seconds(1),
                ATTENTION_LIMIT,
            )
            .await,
        store.undelivered_events(BACKLOG_COUNT_LIMIT).await,
    ) {
        (Ok(mismatches), Ok(abnormal), Ok(undelivered)) => (mismatches, abnormal, undelivered),
        _ => return reply::store_unavailable(),
    };
    let waited_since = inner.clock.now() - super::alerts::OUTBOX_BACKLOG_AGE;
    let stale_events: Vec<Value> = undelivered
        .iter()
        .filter(|event| event.created_at() <= waited_since)
        .take(usize::try_from(ATTENTION_LIMIT).unwrap_or(usize::MAX))
        .map(|event| {
            let mut row = event_json(event);
            if let Some(object) = row.as_object_mut() {
                object.insert(
                    "out_trade_no".to_owned(),
                    Value::String(event.out_trade_no().to_string()),
                );
            }
            row
        })
        .collect();
    reply::json(
        StatusCode::OK,
        &json!({
            "mismatches": mismatches.iter().map(|m| json!({
                "out_trade_no": m.out_trade_no.as_str(),
                "kind": super::alerts::mismatch_kind(&m.detail),
                "detail": m.detail,
                "recorded_at": rfc3339(m.recorded_at),
            })).collect::<Vec<_>>(),
            "abnormal_refunds": abnormal,
            "undelivered_events": stale_events,
            "undelivered_older_than_seconds": super::alerts::OUTBOX_BACKLOG_AGE.whole_seconds(),
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// The outbox

async fn outbox(inner: &Inner) -> Response<Bytes> {
    let undelivered = match inner.store.undelivered_events(BACKLOG_COUNT_LIMIT).await {
        Ok(events) => events,
        Err(_) => return reply::store_unavailable(),
    };
    let oldest = undelivered.iter().map(Event::created_at).min();
    let now = inner.clock.now();
    reply::json(
        StatusCode::OK,
        &json!({
            "undelivered": undelivered.len(),
            "counted_up_to": BACKLOG_COUNT_LIMIT,
            "oldest_created_at": oldest.map_or(Value::Null, rfc3339),
            "oldest_age_seconds": oldest.map(|at| (now - at).whole_seconds().max(0)),
            "hook_configured": inner.hook.is_some(),
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Actions

async fn act(inner: &Inner, no: &OutTradeNo, action: &str) -> Response<Bytes> {
    let order = match inner.store.get(no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return reply::error(
                StatusCode::NOT_FOUND,
                "ORDER_NOT_FOUND",
                format!("no order {no}"),
            );
        }
        Err(_) => return reply::store_unavailable(),
    };
    match action {
        "query" => query_now(inner, &order).await,
        "close" => close(inner, &order).await,
        "redeliver" => redeliver(inner, &order).await,
        _ => reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such admin action"),
    }
}

/// The answer of an action: what it did, and the order as it now stands.
async fn acted(inner: &Inner, no: &OutTradeNo, fields: Value) -> Response<Bytes> {
    let order = match inner.store.get(no).await {
        Ok(Some(order)) => status::operator_json(&order),
        _ => Value::Null,
    };
    let mut body = fields;
    if let Some(object) = body.as_object_mut() {
        object.insert("order".to_owned(), order);
    }
    reply::json(StatusCode::OK, &body)
}

async fn query_now(inner: &Inner, order: &Order) -> Response<Bytes> {
    if !inner.provider.can_query() {
        return reply::error(
            StatusCode::NOT_IMPLEMENTED,
            "QUERY_NOT_SUPPORTED",
            format!("the {} upstream has no order query", inner.provider.name()),
        );
    }
    let report = match inner
        .metrics
        .upstream("query", inner.provider.query(order))
        .await
    {
        Ok(report) => report,
        Err(error) => return reply::upstream_error(inner.provider.name(), &error),
    };
    let before = order.status;
    if report.state == crate::provider::PaymentState::Paid
        && !matches!(before, OrderStatus::Paid | OrderStatus::Refunded)
    {
        let applied = notify::apply_report(inner, order, &report, None).await;
        if !applied.status().is_success() {
            return reply::store_unavailable();
        }
    }
    let after = inner
        .store
        .get(&order.out_trade_no)
        .await
        .ok()
        .flatten()
        .map_or(before, |o| o.status);
    tracing::info!(
        target: "wxpay::admin",
        out_trade_no = %order.out_trade_no,
        upstream = ?report.state,
        before = %before.as_str(),
        after = %after.as_str(),
        "operator queried the upstream"
    );
    acted(
        inner,
        &order.out_trade_no,
        json!({"action": "query", "upstream_state": format!("{:?}", report.state)}),
    )
    .await
}

async fn close(inner: &Inner, order: &Order) -> Response<Bytes> {
    if !matches!(order.status, OrderStatus::Created | OrderStatus::Pending) {
        return reply::error(
            StatusCode::CONFLICT,
            "ORDER_NOT_OPEN",
            format!(
                "order {} is {}: only CREATED or PENDING orders close",
                order.out_trade_no,
                order.status.as_str()
            ),
        );
    }
    // Upstream first: an order closed here but payable there would take money we then refuse.
    if order.prepay_id.is_some()
        && inner.provider.can_query()
        && let Err(error) = inner
            .metrics
            .upstream("close", inner.provider.close(order))
            .await
    {
        return reply::upstream_error(inner.provider.name(), &error);
    }
    match inner
        .store
        .transition(&order.out_trade_no, order.status, Transition::Closed)
        .await
    {
        Ok(_) => {
            tracing::info!(
                target: "wxpay::admin",
                out_trade_no = %order.out_trade_no,
                before = %order.status.as_str(),
                after = "CLOSED",
                "operator closed the order"
            );
            acted(inner, &order.out_trade_no, json!({"action": "close"})).await
        }
        Err(crate::store::StoreError::Conflict { actual, .. }) => reply::error(
            StatusCode::CONFLICT,
            "ORDER_NOT_OPEN",
            format!("the order became {} meanwhile", actual.as_str()),
        ),
        Err(_) => reply::store_unavailable(),
    }
}

async fn redeliver(inner: &Inner, order: &Order) -> Response<Bytes> {
    let Some(hook) = inner.hook.clone() else {
        return reply::error(
            StatusCode::CONFLICT,
            "NO_EVENT_HOOK",
            "this engine has no event hook to deliver to",
        );
    };
    let events = match inner.store.events_for_order(&order.out_trade_no).await {
        Ok(events) => events,
        Err(_) => return reply::store_unavailable(),
    };
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    for event in &events {
        match hook.on_event(event).await {
            Ok(()) => {
                if inner.store.mark_delivered(event.event_id()).await.is_err() {
                    return reply::store_unavailable();
                }
                delivered.push(event.event_id().to_owned());
            }
            Err(error) => {
                failed.push(json!({"event_id": event.event_id(), "error": error.to_string()}));
            }
        }
    }
    tracing::info!(
        target: "wxpay::admin",
        out_trade_no = %order.out_trade_no,
        delivered = delivered.len(),
        failed = failed.len(),
        "operator redelivered the order's events"
    );
    acted(
        inner,
        &order.out_trade_no,
        json!({"action": "redeliver", "delivered": delivered, "failed": failed}),
    )
    .await
}
