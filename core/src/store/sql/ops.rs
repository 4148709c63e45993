// The store's operations for one backend. This file is `include!`d by the modules `sqlite`,
// `postgres` and `mysql` of `store::sql`, each of which defines `Db` (the sqlx database type)
// and `DIALECT` before including it, so the same code is compiled against each concrete
// backend without sqlx's generic trait bounds.

use sqlx::Row as _;
use time::OffsetDateTime;

use super::{
    EVENT_COLUMNS, MAX_ATTEMPTS, ORDER_COLUMNS, REFUND_COLUMNS, amount_of, backend, corrupt, field,
    i64_of, is_unique_violation, millis, opt_time_of, retry, time_of,
};
use crate::clock::Clock;
use crate::fields::{Attach, Currency, Description, OpenId, OutRefundNo, OutTradeNo, RefundReason};
use crate::order::{Decision, Order, OrderStatus, Transition};
use crate::refund::{
    MAX_REFUNDS_PER_ORDER, NewRefund, Refund, RefundDecision, RefundStatus, RefundUpdate,
};
use crate::store::{
    Event, InboxEntry, InboxOutcome, InsertOutcome, ListCursor, Mismatch, OrderCursor, OrderFilter, PaidEvent,
    PruneBefore, PruneReport,
    RefundEvent, RefundReservation,
    RefundUpdateOutcome, StoreError, TransitionOutcome,
};

type Pool = sqlx::Pool<Db>;
type DbRow = <Db as sqlx::Database>::Row;

fn sql(text: &str) -> String {
    DIALECT.sql(text)
}

fn opt_text(row: &DbRow, column: &str) -> Result<Option<String>, StoreError> {
    if DIALECT == super::Dialect::MySql {
        // Binary-collated MySQL columns carry the BINARY flag, for which sqlx's `String` type
        // check fails although the bytes are text; decoding still checks they are UTF-8.
        row.try_get_unchecked::<Option<String>, _>(column)
            .map_err(backend)
    } else {
        row.try_get::<Option<String>, _>(column).map_err(backend)
    }
}

fn text(row: &DbRow, column: &str) -> Result<String, StoreError> {
    opt_text(row, column)?.ok_or_else(|| corrupt(format_args!("{column} is NULL")))
}

fn opt_int(row: &DbRow, column: &str) -> Result<Option<i64>, StoreError> {
    row.try_get::<Option<i64>, _>(column).map_err(backend)
}

fn int(row: &DbRow, column: &str) -> Result<i64, StoreError> {
    opt_int(row, column)?.ok_or_else(|| corrupt(format_args!("{column} is NULL")))
}

fn order_of(row: &DbRow) -> Result<(Order, i64), StoreError> {
    let order = Order {
        out_trade_no: field(
            OutTradeNo::try_from(text(row, "out_trade_no")?),
            "out_trade_no",
        )?,
        provider: text(row, "provider")?,
        appid: opt_text(row, "appid")?,
        mchid: opt_text(row, "mchid")?,
        openid: field(OpenId::try_from(text(row, "openid")?), "openid")?,
        amount: amount_of(int(row, "amount_fen")?)?,
        currency: field(Currency::try_from(text(row, "currency")?), "currency")?,
        description: field(
            Description::try_from(text(row, "description")?),
            "description",
        )?,
        attach: field(
            opt_text(row, "attach")?.map(Attach::try_from).transpose(),
            "attach",
        )?,
        status: field(text(row, "status")?.parse::<OrderStatus>(), "status")?,
        prepay_id: opt_text(row, "prepay_id")?,
        prepay_expires_at: opt_time_of(opt_int(row, "prepay_expires_at")?, "prepay_expires_at")?,
        transaction_id: opt_text(row, "transaction_id")?,
        paid_at: opt_time_of(opt_int(row, "paid_at")?, "paid_at")?,
        payer: opt_text(row, "payer")?,
        failure_reason: opt_text(row, "failure_reason")?,
        refund_held_fen: fen_of(int(row, "refund_held_fen")?, "refund_held_fen")?,
        refunded_fen: fen_of(int(row, "refunded_fen")?, "refunded_fen")?,
        refund_count: field(u32::try_from(int(row, "refund_count")?), "refund_count")?,
        created_at: time_of(int(row, "created_at")?, "created_at")?,
        updated_at: time_of(int(row, "updated_at")?, "updated_at")?,
    };
    Ok((order, int(row, "version")?))
}

fn fen_of(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format_args!("{column} {value} is negative")))
}

fn event_of(row: &DbRow) -> Result<Event, StoreError> {
    let out_trade_no = field(
        OutTradeNo::try_from(text(row, "out_trade_no")?),
        "out_trade_no",
    )?;
    let currency = field(Currency::try_from(text(row, "currency")?), "currency")?;
    let created_at = time_of(int(row, "created_at")?, "created_at")?;
    let delivered_at = opt_time_of(opt_int(row, "delivered_at")?, "delivered_at")?;
    match text(row, "kind")?.as_str() {
        "paid" => Ok(Event::Paid(PaidEvent {
            event_id: text(row, "event_id")?,
            out_trade_no,
            transaction_id: text(row, "transaction_id")?,
            amount: amount_of(int(row, "amount_fen")?)?,
            currency,
            payer: opt_text(row, "payer")?,
            attach: field(
                opt_text(row, "attach")?.map(Attach::try_from).transpose(),
                "attach",
            )?,
            paid_at: time_of(int(row, "paid_at")?, "paid_at")?,
            created_at,
            delivered_at,
        })),
        "refund" => Ok(Event::Refund(RefundEvent {
            event_id: text(row, "event_id")?,
            out_trade_no,
            out_refund_no: field(
                OutRefundNo::try_from(text(row, "out_refund_no")?),
                "out_refund_no",
            )?,
            transaction_id: text(row, "transaction_id")?,
            refund_id: opt_text(row, "refund_id")?,
            amount: amount_of(int(row, "amount_fen")?)?,
            currency,
            status: field(
                text(row, "refund_status")?.parse::<RefundStatus>(),
                "refund_status",
            )?,
            created_at,
            delivered_at,
        })),
        other => Err(corrupt(format_args!("outbox kind {other:?}"))),
    }
}

fn refund_of(row: &DbRow) -> Result<(Refund, i64), StoreError> {
    let refund = Refund {
        out_refund_no: field(
            OutRefundNo::try_from(text(row, "out_refund_no")?),
            "out_refund_no",
        )?,
        out_trade_no: field(
            OutTradeNo::try_from(text(row, "out_trade_no")?),
            "out_trade_no",
        )?,
        amount: amount_of(int(row, "amount_fen")?)?,
        reason: field(
            opt_text(row, "reason")?
                .map(RefundReason::try_from)
                .transpose(),
            "reason",
        )?,
        status: field(text(row, "status")?.parse::<RefundStatus>(), "status")?,
        refund_id: opt_text(row, "refund_id")?,
        user_received_account: opt_text(row, "user_received_account")?,
        failure: opt_text(row, "failure")?,
        created_at: time_of(int(row, "created_at")?, "created_at")?,
        updated_at: time_of(int(row, "updated_at")?, "updated_at")?,
        succeeded_at: opt_time_of(opt_int(row, "succeeded_at")?, "succeeded_at")?,
    };
    Ok((refund, int(row, "version")?))
}

async fn get_versioned(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Option<(Order, i64)>, StoreError> {
    let query = sql(&format!(
        "SELECT {ORDER_COLUMNS} FROM wxpay_orders WHERE out_trade_no = ?"
    ));
    let row = sqlx::query(&query)
        .bind(out_trade_no.as_str())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(order_of).transpose()
}

pub(super) async fn get(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Option<Order>, StoreError> {
    retry(|| async move { Ok(get_versioned(pool, out_trade_no).await?.map(|(o, _)| o)) }).await
}

pub(super) async fn insert_if_absent(
    pool: &Pool,
    order: &Order,
) -> Result<InsertOutcome, StoreError> {
    // ON CONFLICT DO NOTHING where the backend has it (no error in the server's log for an
    // expected duplicate); MySQL reports the duplicate as an error instead.
    let query = sql(&format!(
        "INSERT INTO wxpay_orders ({ORDER_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
        DIALECT.on_conflict_do_nothing("out_trade_no")
    ));
    let amount = i64_of(order.amount.fen(), "amount")?;
    let query = &query;
    retry(|| async move {
        let inserted = sqlx::query(query)
            .bind(order.out_trade_no.as_str())
            .bind(order.provider.as_str())
            .bind(order.appid.as_deref())
            .bind(order.mchid.as_deref())
            .bind(order.openid.as_str())
            .bind(amount)
            .bind(order.currency.as_str())
            .bind(order.description.as_str())
            .bind(order.attach.as_ref().map(Attach::as_str))
            .bind(order.status.as_str())
            .bind(order.prepay_id.as_deref())
            .bind(order.prepay_expires_at.map(millis))
            .bind(order.transaction_id.as_deref())
            .bind(order.paid_at.map(millis))
            .bind(order.payer.as_deref())
            .bind(order.failure_reason.as_deref())
            .bind(i64_of(order.refund_held_fen, "refund_held_fen")?)
            .bind(i64_of(order.refunded_fen, "refunded_fen")?)
            .bind(i64::from(order.refund_count))
            .bind(0_i64)
            .bind(millis(order.created_at))
            .bind(millis(order.updated_at))
            .execute(pool)
            .await;
        match inserted {
            Ok(done) if done.rows_affected() == 1 => Ok(InsertOutcome::Inserted(order.clone())),
            Ok(_) => existing(pool, &order.out_trade_no).await,
            Err(err) if is_unique_violation(&err) => existing(pool, &order.out_trade_no).await,
            Err(err) => Err(backend(err)),
        }
    })
    .await
}

async fn existing(pool: &Pool, out_trade_no: &OutTradeNo) -> Result<InsertOutcome, StoreError> {
    match get_versioned(pool, out_trade_no).await? {
        Some((order, _)) => Ok(InsertOutcome::Existing(order)),
        None => Err(StoreError::Backend(
            format!("order {out_trade_no} was reported existing but is not there").into(),
        )),
    }
}

pub(super) async fn transition(
    pool: &Pool,
    clock: &dyn Clock,
    out_trade_no: &OutTradeNo,
    expected: OrderStatus,
    transition: &Transition,
    notification_id: Option<&str>,
) -> Result<TransitionOutcome, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let step = retry(|| async move {
            try_transition(
                pool,
                clock,
                out_trade_no,
                expected,
                transition,
                notification_id,
            )
            .await
        })
        .await?;
        if let Some(outcome) = step {
            return Ok(outcome);
        }
    }
    Err(StoreError::Backend(
        format!("order {out_trade_no} kept changing during {MAX_ATTEMPTS} attempts").into(),
    ))
}

/// One compare-and-set attempt: `None` when the order changed between the read and the write.
async fn try_transition(
    pool: &Pool,
    clock: &dyn Clock,
    out_trade_no: &OutTradeNo,
    expected: OrderStatus,
    transition: &Transition,
    notification_id: Option<&str>,
) -> Result<Option<TransitionOutcome>, StoreError> {
    let Some((current, version)) = get_versioned(pool, out_trade_no).await? else {
        return Err(StoreError::NotFound {
            out_trade_no: out_trade_no.clone(),
        });
    };
    let now = crate::order::truncate_to_millis(clock.now());
    match current.decide(expected, transition)? {
        Decision::AlreadyApplied => {
            if let Some(id) = notification_id {
                sqlx::query(&sql(DIALECT.insert_inbox_if_absent()))
                    .bind(id)
                    .bind(out_trade_no.as_str())
                    .bind(millis(now))
                    .execute(pool)
                    .await
                    .map_err(backend)?;
            }
            Ok(Some(TransitionOutcome::AlreadyApplied(current)))
        }
        Decision::Apply => {
            let next = current.applied(transition, now);
            let event = match transition {
                Transition::Paid { .. } | Transition::PaidUnprepared { .. } => {
                    Some(PaidEvent::for_paid_order(&next, now)?)
                }
                _ => None,
            };
            let mut tx = pool.begin().await.map_err(backend)?;
            // The update is the transaction's first statement: on SQLite it takes the write
            // lock (waiting on busy_timeout) before reading, so it sees the latest row.
            let updated = sqlx::query(&sql(
                "UPDATE wxpay_orders SET status = ?, prepay_id = ?, prepay_expires_at = ?, \
                 transaction_id = ?, paid_at = ?, payer = ?, failure_reason = ?, \
                 updated_at = ?, version = version + 1 \
                 WHERE out_trade_no = ? AND version = ?",
            ))
            .bind(next.status.as_str())
            .bind(next.prepay_id.as_deref())
            .bind(next.prepay_expires_at.map(millis))
            .bind(next.transaction_id.as_deref())
            .bind(next.paid_at.map(millis))
            .bind(next.payer.as_deref())
            .bind(next.failure_reason.as_deref())
            .bind(millis(next.updated_at))
            .bind(out_trade_no.as_str())
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if updated.rows_affected() != 1 {
                tx.rollback().await.map_err(backend)?;
                return Ok(None);
            }
            if let Some(event) = &event {
                sqlx::query(&sql(&format!(
                    "INSERT INTO wxpay_outbox ({EVENT_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'paid', NULL, NULL, NULL)"
                )))
                .bind(event.event_id.as_str())
                .bind(event.out_trade_no.as_str())
                .bind(event.transaction_id.as_str())
                .bind(i64_of(event.amount.fen(), "amount")?)
                .bind(event.currency.as_str())
                .bind(event.payer.as_deref())
                .bind(event.attach.as_ref().map(Attach::as_str))
                .bind(millis(event.paid_at))
                .bind(millis(event.created_at))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            if let Some(id) = notification_id {
                sqlx::query(&sql(DIALECT.insert_inbox_if_absent()))
                    .bind(id)
                    .bind(out_trade_no.as_str())
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(Some(TransitionOutcome::Applied(next)))
        }
    }
}

pub(super) async fn record_notification(
    pool: &Pool,
    event_id: &str,
    out_trade_no: Option<&OutTradeNo>,
    now: OffsetDateTime,
) -> Result<InboxOutcome, StoreError> {
    let query = &sql(&format!(
        "INSERT INTO wxpay_inbox (event_id, out_trade_no, received_at) VALUES (?, ?, ?){}",
        DIALECT.on_conflict_do_nothing("event_id")
    ));
    retry(|| async move {
        let inserted = sqlx::query(query)
            .bind(event_id)
            .bind(out_trade_no.map(OutTradeNo::as_str))
            .bind(millis(now))
            .execute(pool)
            .await;
        match inserted {
            Ok(done) if done.rows_affected() == 1 => Ok(InboxOutcome::New),
            Ok(_) => Ok(InboxOutcome::Duplicate),
            Err(err) if is_unique_violation(&err) => Ok(InboxOutcome::Duplicate),
            Err(err) => Err(backend(err)),
        }
    })
    .await
}

pub(super) async fn has_notification(pool: &Pool, event_id: &str) -> Result<bool, StoreError> {
    let query = &sql("SELECT event_id FROM wxpay_inbox WHERE event_id = ?");
    retry(|| async move {
        let row = sqlx::query(query)
            .bind(event_id)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    })
    .await
}

async fn events_where(
    pool: &Pool,
    condition: &str,
    key: Option<&str>,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let query = &sql(&format!(
        "SELECT {EVENT_COLUMNS} FROM wxpay_outbox WHERE {condition} ORDER BY seq LIMIT ?"
    ));
    retry(|| async move {
        let mut q = sqlx::query(query);
        if let Some(key) = key {
            q = q.bind(key);
        }
        let rows = q
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(event_of).collect()
    })
    .await
}

pub(super) async fn undelivered_events(pool: &Pool, limit: u32) -> Result<Vec<Event>, StoreError> {
    events_where(pool, "delivered_at IS NULL", None, limit).await
}

pub(super) async fn claim_undelivered_events(
    pool: &Pool,
    holder: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    const CLAIMABLE: &str = "delivered_at IS NULL \
         AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)";
    let candidates = &sql(&format!(
        "SELECT {EVENT_COLUMNS} FROM wxpay_outbox WHERE {CLAIMABLE} ORDER BY seq LIMIT ?"
    ));
    let claim = &sql(&format!(
        "UPDATE wxpay_outbox SET claimed_by = ?, claimed_until = ? WHERE event_id = ? AND {CLAIMABLE}"
    ));
    retry(|| async move {
        let rows = sqlx::query(candidates)
            .bind(millis(now))
            .bind(holder)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let event = event_of(row)?;
            // The candidate may have been claimed or delivered since it was read: only the
            // conditional update makes it ours. (The new expiry always differs from the old,
            // so MySQL counts the row as changed.)
            let done = sqlx::query(claim)
                .bind(holder)
                .bind(millis(until))
                .bind(event.event_id())
                .bind(millis(now))
                .bind(holder)
                .execute(pool)
                .await
                .map_err(backend)?;
            if done.rows_affected() == 1 {
                claimed.push(event);
            }
        }
        Ok(claimed)
    })
    .await
}

pub(super) async fn acquire_lease(
    pool: &Pool,
    name: &str,
    holder: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<bool, StoreError> {
    let insert = &sql(&format!(
        "INSERT INTO wxpay_leases (name, holder, expires_at) VALUES (?, ?, ?){}",
        DIALECT.on_conflict_do_nothing("name")
    ));
    let take = &sql(
        "UPDATE wxpay_leases SET holder = ?, expires_at = ? \
         WHERE name = ? AND (holder = ? OR expires_at < ?)",
    );
    let current = &sql("SELECT holder, expires_at FROM wxpay_leases WHERE name = ?");
    retry(|| async move {
        let inserted = sqlx::query(insert)
            .bind(name)
            .bind(holder)
            .bind(millis(until))
            .execute(pool)
            .await;
        match inserted {
            Ok(done) if done.rows_affected() == 1 => return Ok(true),
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {}
            Err(err) => return Err(backend(err)),
        }
        let taken = sqlx::query(take)
            .bind(holder)
            .bind(millis(until))
            .bind(name)
            .bind(holder)
            .bind(millis(now))
            .execute(pool)
            .await
            .map_err(backend)?;
        if taken.rows_affected() == 1 {
            return Ok(true);
        }
        // MySQL counts a renewal within the same millisecond as no change: read who holds it.
        let row = sqlx::query(current)
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(false) };
        let held_by: String = text(&row, "holder")?;
        let expires_at: i64 = row.try_get("expires_at").map_err(backend)?;
        Ok(held_by == holder && expires_at >= millis(now))
    })
    .await
}

pub(super) async fn release_lease(pool: &Pool, name: &str, holder: &str) -> Result<(), StoreError> {
    let query = &sql("DELETE FROM wxpay_leases WHERE name = ? AND holder = ?");
    retry(|| async move {
        sqlx::query(query)
            .bind(name)
            .bind(holder)
            .execute(pool)
            .await
            .map_err(backend)?;
        Ok(())
    })
    .await
}

pub(super) async fn events_for_order(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Vec<Event>, StoreError> {
    events_where(
        pool,
        "out_trade_no = ?",
        Some(out_trade_no.as_str()),
        u32::MAX,
    )
    .await
}

pub(super) async fn mark_delivered(
    pool: &Pool,
    event_id: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let update = &sql(
        "UPDATE wxpay_outbox SET delivered_at = ? WHERE event_id = ? AND delivered_at IS NULL",
    );
    let exists = &sql("SELECT event_id FROM wxpay_outbox WHERE event_id = ?");
    retry(|| async move {
        let updated = sqlx::query(update)
            .bind(millis(now))
            .bind(event_id)
            .execute(pool)
            .await
            .map_err(backend)?;
        if updated.rows_affected() > 0 {
            return Ok(());
        }
        let found = sqlx::query(exists)
            .bind(event_id)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::EventNotFound {
                event_id: event_id.to_owned(),
            }),
        }
    })
    .await
}

/// The first whole millisecond at or after `at`. Times are stored in whole milliseconds, so a
/// stored time is before `at` exactly when it is before this ("before 10.0005" is "at or
/// before 10.000"), and at or after `at` exactly when it is at or after this.
fn ceil_millis(at: OffsetDateTime) -> i64 {
    crate::order::to_millis(at) + i64::from(crate::order::truncate_to_millis(at) != at)
}

pub(super) async fn list_stale_after(
    pool: &Pool,
    status: OrderStatus,
    updated_before: OffsetDateTime,
    after: Option<&OrderCursor>,
    limit: u32,
) -> Result<Vec<Order>, StoreError> {
    let query = &sql(&format!(
        "SELECT {ORDER_COLUMNS} FROM wxpay_orders WHERE status = ? AND updated_at < ? \
         AND (updated_at > ? OR (updated_at = ? AND out_trade_no > ?)) \
         ORDER BY updated_at, out_trade_no LIMIT ?"
    ));
    let before = ceil_millis(updated_before);
    // Without a cursor every row is "after" (-1, ""): `updated_at` is never negative.
    let (after_millis, after_no) = after.map_or((-1, ""), |cursor| {
        (
            crate::order::to_millis(cursor.updated_at),
            cursor.out_trade_no.as_str(),
        )
    });
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(status.as_str())
            .bind(before)
            .bind(after_millis)
            .bind(after_millis)
            .bind(after_no)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| Ok(order_of(row)?.0)).collect()
    })
    .await
}

pub(super) async fn list_orders(
    pool: &Pool,
    filter: &OrderFilter,
    before: Option<&ListCursor>,
    limit: u32,
) -> Result<Vec<Order>, StoreError> {
    // One statement for every filter: an absent one is a condition that always holds (an
    // empty status, the widest times, a prefix of length 0, a cursor past every order).
    let query = &sql(&format!(
        "SELECT {ORDER_COLUMNS} FROM wxpay_orders \
         WHERE (? = '' OR status = ?) AND created_at >= ? AND created_at < ? \
         AND SUBSTR(out_trade_no, 1, ?) = ? \
         AND (created_at < ? OR (created_at = ? AND out_trade_no < ?)) \
         ORDER BY created_at DESC, out_trade_no DESC LIMIT ?"
    ));
    let status = filter.status.map_or("", OrderStatus::as_str);
    let from = filter.created_from.map_or(i64::MIN, ceil_millis);
    let until = filter.created_before.map_or(i64::MAX, ceil_millis);
    let prefix = filter.number_prefix.as_deref().unwrap_or("");
    let prefix_len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    let (cursor_millis, cursor_no) = before.map_or((i64::MAX, ""), |cursor| {
        (
            crate::order::to_millis(cursor.created_at),
            cursor.out_trade_no.as_str(),
        )
    });
    // Without a cursor, `created_at < i64::MAX` holds for every stored order.
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(status)
            .bind(status)
            .bind(from)
            .bind(until)
            .bind(prefix_len)
            .bind(prefix)
            .bind(cursor_millis)
            .bind(cursor_millis)
            .bind(cursor_no)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| Ok(order_of(row)?.0)).collect()
    })
    .await
}

pub(super) async fn prune(pool: &Pool, before: &PruneBefore) -> Result<PruneReport, StoreError> {
    Ok(PruneReport {
        inbox: delete_before(
            pool,
            "DELETE FROM wxpay_inbox WHERE received_at < ?",
            before.inbox,
        )
        .await?,
        delivered_events: delete_before(
            pool,
            "DELETE FROM wxpay_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
            before.delivered_events,
        )
        .await?,
        mismatches: delete_before(
            pool,
            "DELETE FROM wxpay_mismatches WHERE recorded_at < ?",
            before.mismatches,
        )
        .await?,
    })
}

/// Runs `query`, whose one parameter is a time in milliseconds, with `before`.
async fn delete_before(
    pool: &Pool,
    query: &str,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let query = &sql(query);
    let before = ceil_millis(before);
    retry(|| async move {
        let done = sqlx::query(query)
            .bind(before)
            .execute(pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    })
    .await
}

pub(super) async fn record_mismatch(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
    detail: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let query =
        &sql("INSERT INTO wxpay_mismatches (out_trade_no, detail, recorded_at) VALUES (?, ?, ?)");
    retry(|| async move {
        sqlx::query(query)
            .bind(out_trade_no.as_str())
            .bind(detail)
            .bind(millis(now))
            .execute(pool)
            .await
            .map_err(backend)?;
        Ok(())
    })
    .await
}

pub(super) async fn mismatches(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Vec<Mismatch>, StoreError> {
    let query = &sql(
        "SELECT out_trade_no, detail, recorded_at FROM wxpay_mismatches \
         WHERE out_trade_no = ? ORDER BY id",
    );
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(out_trade_no.as_str())
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(mismatch_of).collect()
    })
    .await
}

fn mismatch_of(row: &DbRow) -> Result<Mismatch, StoreError> {
    Ok(Mismatch {
        out_trade_no: field(
            OutTradeNo::try_from(text(row, "out_trade_no")?),
            "out_trade_no",
        )?,
        detail: text(row, "detail")?,
        recorded_at: time_of(int(row, "recorded_at")?, "recorded_at")?,
    })
}

pub(super) async fn recent_mismatches(pool: &Pool, limit: u32) -> Result<Vec<Mismatch>, StoreError> {
    let query = &sql(
        "SELECT out_trade_no, detail, recorded_at FROM wxpay_mismatches \
         ORDER BY recorded_at DESC, id DESC LIMIT ?",
    );
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(mismatch_of).collect()
    })
    .await
}

pub(super) async fn notifications_for_order(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Vec<InboxEntry>, StoreError> {
    let query = &sql(
        "SELECT event_id, received_at FROM wxpay_inbox WHERE out_trade_no = ? \
         ORDER BY received_at, event_id",
    );
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(out_trade_no.as_str())
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(InboxEntry {
                    event_id: text(row, "event_id")?,
                    out_trade_no: Some(out_trade_no.clone()),
                    received_at: time_of(int(row, "received_at")?, "received_at")?,
                })
            })
            .collect()
    })
    .await
}

pub(super) async fn count_orders_by_status(
    pool: &Pool,
) -> Result<Vec<(OrderStatus, u64)>, StoreError> {
    let query = &sql("SELECT status, COUNT(*) AS n FROM wxpay_orders GROUP BY status");
    retry(|| async move {
        let rows = sqlx::query(query)
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        let mut counts: Vec<(OrderStatus, u64)> =
            OrderStatus::ALL.iter().map(|&status| (status, 0)).collect();
        for row in &rows {
            let status = field(text(row, "status")?.parse::<OrderStatus>(), "status")?;
            let n = u64::try_from(int(row, "n")?)
                .map_err(|_| corrupt(format_args!("negative order count")))?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = n;
            }
        }
        Ok(counts)
    })
    .await
}

async fn get_refund_versioned(
    pool: &Pool,
    out_refund_no: &OutRefundNo,
) -> Result<Option<(Refund, i64)>, StoreError> {
    let query = sql(&format!(
        "SELECT {REFUND_COLUMNS} FROM wxpay_refunds WHERE out_refund_no = ?"
    ));
    let row = sqlx::query(&query)
        .bind(out_refund_no.as_str())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(refund_of).transpose()
}

pub(super) async fn reserve_refund(
    pool: &Pool,
    refund: &NewRefund,
    now: OffsetDateTime,
) -> Result<RefundReservation, StoreError> {
    let refund = &refund.clone().into_refund(now);
    for _ in 0..MAX_ATTEMPTS {
        let step = retry(|| async move { try_reserve_refund(pool, refund).await }).await?;
        if let Some(reservation) = step {
            return Ok(reservation);
        }
    }
    Err(StoreError::Backend(
        format!(
            "order {} kept changing during {MAX_ATTEMPTS} attempts",
            refund.out_trade_no
        )
        .into(),
    ))
}

/// One reservation attempt: `None` when a concurrent change got in the way (try again).
async fn try_reserve_refund(
    pool: &Pool,
    refund: &Refund,
) -> Result<Option<RefundReservation>, StoreError> {
    if let Some((existing, _)) = get_refund_versioned(pool, &refund.out_refund_no).await? {
        return crate::store::existing_refund(&existing, &refund.out_trade_no).map(Some);
    }
    let fen = i64_of(refund.amount.fen(), "amount")?;
    let mut tx = pool.begin().await.map_err(backend)?;
    // The conditional write that keeps refunds within the paid amount: the order's row lock
    // (PostgreSQL, MySQL) or SQLite's single writer serialises concurrent reservations, and
    // each re-evaluates the condition on the row as the previous one left it.
    let held = sqlx::query(&sql(
        "UPDATE wxpay_orders SET refund_held_fen = refund_held_fen + ?, \
         refund_count = refund_count + 1, updated_at = ?, version = version + 1 \
         WHERE out_trade_no = ? AND status = 'PAID' AND refund_held_fen + ? <= amount_fen \
         AND refund_count < ?",
    ))
    .bind(fen)
    .bind(millis(refund.created_at))
    .bind(refund.out_trade_no.as_str())
    .bind(fen)
    .bind(i64::from(MAX_REFUNDS_PER_ORDER))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if held.rows_affected() != 1 {
        tx.rollback().await.map_err(backend)?;
        let Some((order, _)) = get_versioned(pool, &refund.out_trade_no).await? else {
            return Err(StoreError::NotFound {
                out_trade_no: refund.out_trade_no.clone(),
            });
        };
        crate::store::check_refundable(&order, refund.amount.fen())?;
        // It fits now: a refund was released in between.
        return Ok(None);
    }
    let inserted = sqlx::query(&sql(&format!(
        "INSERT INTO wxpay_refunds ({REFUND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )))
    .bind(refund.out_refund_no.as_str())
    .bind(refund.out_trade_no.as_str())
    .bind(fen)
    .bind(refund.reason.as_ref().map(RefundReason::as_str))
    .bind(refund.status.as_str())
    .bind(refund.refund_id.as_deref())
    .bind(refund.user_received_account.as_deref())
    .bind(refund.failure.as_deref())
    .bind(0_i64)
    .bind(millis(refund.created_at))
    .bind(millis(refund.updated_at))
    .bind(refund.succeeded_at.map(millis))
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => {
            // A concurrent reservation of the same number won: undo ours and read theirs.
            tx.rollback().await.map_err(backend)?;
            return Ok(None);
        }
        Err(err) => return Err(backend(err)),
    }
    tx.commit().await.map_err(backend)?;
    Ok(Some(RefundReservation::Reserved(refund.clone())))
}

pub(super) async fn update_refund(
    pool: &Pool,
    clock: &dyn Clock,
    out_refund_no: &OutRefundNo,
    update: &RefundUpdate,
    notification_id: Option<&str>,
) -> Result<RefundUpdateOutcome, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let step = retry(|| async move {
            try_update_refund(pool, clock, out_refund_no, update, notification_id).await
        })
        .await?;
        if let Some(outcome) = step {
            return Ok(outcome);
        }
    }
    Err(StoreError::Backend(
        format!("refund {out_refund_no} kept changing during {MAX_ATTEMPTS} attempts").into(),
    ))
}

/// One compare-and-set attempt: `None` when the refund changed between the read and the write.
async fn try_update_refund(
    pool: &Pool,
    clock: &dyn Clock,
    out_refund_no: &OutRefundNo,
    update: &RefundUpdate,
    notification_id: Option<&str>,
) -> Result<Option<RefundUpdateOutcome>, StoreError> {
    let Some((current, version)) = get_refund_versioned(pool, out_refund_no).await? else {
        return Err(StoreError::RefundNotFound {
            out_refund_no: out_refund_no.clone(),
        });
    };
    let now = crate::order::truncate_to_millis(clock.now());
    let inbox = sql(DIALECT.insert_inbox_if_absent());
    if current.decide(update)? == RefundDecision::AlreadyApplied {
        if let Some(id) = notification_id {
            sqlx::query(&inbox)
                .bind(id)
                .bind(current.out_trade_no.as_str())
                .bind(millis(now))
                .execute(pool)
                .await
                .map_err(backend)?;
        }
        return Ok(Some(RefundUpdateOutcome::AlreadyApplied(current)));
    }
    let next = current.applied(update, now);
    let (held, refunded) = current.order_effect(update);
    let mut tx = pool.begin().await.map_err(backend)?;
    // The order first, as a reservation does, so the two lock rows in the same order.
    let totals = sqlx::query(&sql(
        "UPDATE wxpay_orders SET refund_held_fen = refund_held_fen + ?, \
         refunded_fen = refunded_fen + ?, updated_at = ?, version = version + 1 \
         WHERE out_trade_no = ?",
    ))
    .bind(held)
    .bind(refunded)
    .bind(millis(now))
    .bind(current.out_trade_no.as_str())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if totals.rows_affected() != 1 {
        tx.rollback().await.map_err(backend)?;
        return Err(corrupt(format_args!(
            "refund {out_refund_no} of missing order {}",
            current.out_trade_no
        )));
    }
    let moved = sqlx::query(&sql(
        "UPDATE wxpay_refunds SET status = ?, refund_id = ?, user_received_account = ?, \
         failure = ?, updated_at = ?, succeeded_at = ?, version = version + 1 \
         WHERE out_refund_no = ? AND version = ?",
    ))
    .bind(next.status.as_str())
    .bind(next.refund_id.as_deref())
    .bind(next.user_received_account.as_deref())
    .bind(next.failure.as_deref())
    .bind(millis(next.updated_at))
    .bind(next.succeeded_at.map(millis))
    .bind(out_refund_no.as_str())
    .bind(version)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if moved.rows_affected() != 1 {
        tx.rollback().await.map_err(backend)?;
        return Ok(None);
    }
    if next.status != current.status {
        let row = sqlx::query(&sql(&format!(
            "SELECT {ORDER_COLUMNS} FROM wxpay_orders WHERE out_trade_no = ?"
        )))
        .bind(current.out_trade_no.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let (order, _) = order_of(&row)?;
        if let Some(event) = RefundEvent::for_refund(&order, &next, now)? {
            sqlx::query(&sql(&format!(
                "INSERT INTO wxpay_outbox ({EVENT_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?, NULL, 'refund', ?, ?, ?)"
            )))
            .bind(event.event_id.as_str())
            .bind(event.out_trade_no.as_str())
            .bind(event.transaction_id.as_str())
            .bind(i64_of(event.amount.fen(), "amount")?)
            .bind(event.currency.as_str())
            // The outbox's paid_at column is the order's payment time for refund events too.
            .bind(order.paid_at.map_or(millis(now), millis))
            .bind(millis(event.created_at))
            .bind(event.out_refund_no.as_str())
            .bind(event.refund_id.as_deref())
            .bind(event.status.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
    }
    if let Some(id) = notification_id {
        sqlx::query(&inbox)
            .bind(id)
            .bind(current.out_trade_no.as_str())
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(Some(RefundUpdateOutcome::Applied(next)))
}

pub(super) async fn get_refund(
    pool: &Pool,
    out_refund_no: &OutRefundNo,
) -> Result<Option<Refund>, StoreError> {
    retry(|| async move {
        Ok(get_refund_versioned(pool, out_refund_no)
            .await?
            .map(|(refund, _)| refund))
    })
    .await
}

pub(super) async fn refunds_for_order(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Vec<Refund>, StoreError> {
    let query = &sql(&format!(
        "SELECT {REFUND_COLUMNS} FROM wxpay_refunds WHERE out_trade_no = ? \
         ORDER BY created_at, out_refund_no"
    ));
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(out_trade_no.as_str())
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| Ok(refund_of(row)?.0)).collect()
    })
    .await
}

pub(super) async fn list_stale_refunds(
    pool: &Pool,
    status: RefundStatus,
    updated_before: OffsetDateTime,
    limit: u32,
) -> Result<Vec<Refund>, StoreError> {
    let query = &sql(&format!(
        "SELECT {REFUND_COLUMNS} FROM wxpay_refunds WHERE status = ? AND updated_at < ? \
         ORDER BY updated_at, out_refund_no LIMIT ?"
    ));
    let before = ceil_millis(updated_before);
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(status.as_str())
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| Ok(refund_of(row)?.0)).collect()
    })
    .await
}
