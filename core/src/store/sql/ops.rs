// The store's operations for one backend. This file is `include!`d by the modules `sqlite`,
// `postgres` and `mysql` of `store::sql`, each of which defines `Db` (the sqlx database type)
// and `DIALECT` before including it, so the same code is compiled against each concrete
// backend without sqlx's generic trait bounds.

use sqlx::Row as _;
use time::OffsetDateTime;

use super::{
    EVENT_COLUMNS, MAX_ATTEMPTS, ORDER_COLUMNS, amount_of, backend, corrupt, field, i64_of,
    is_unique_violation, millis, opt_time_of, retry, time_of,
};
use crate::clock::Clock;
use crate::fields::{Attach, Currency, Description, OpenId, OutTradeNo};
use crate::order::{Decision, Order, OrderStatus, Transition};
use crate::store::{
    InboxOutcome, InsertOutcome, Mismatch, PaidEvent, StoreError, TransitionOutcome,
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
        created_at: time_of(int(row, "created_at")?, "created_at")?,
        updated_at: time_of(int(row, "updated_at")?, "updated_at")?,
    };
    Ok((order, int(row, "version")?))
}

fn event_of(row: &DbRow) -> Result<PaidEvent, StoreError> {
    Ok(PaidEvent {
        event_id: text(row, "event_id")?,
        out_trade_no: field(
            OutTradeNo::try_from(text(row, "out_trade_no")?),
            "out_trade_no",
        )?,
        transaction_id: text(row, "transaction_id")?,
        amount: amount_of(int(row, "amount_fen")?)?,
        currency: field(Currency::try_from(text(row, "currency")?), "currency")?,
        payer: opt_text(row, "payer")?,
        attach: field(
            opt_text(row, "attach")?.map(Attach::try_from).transpose(),
            "attach",
        )?,
        paid_at: time_of(int(row, "paid_at")?, "paid_at")?,
        created_at: time_of(int(row, "created_at")?, "created_at")?,
        delivered_at: opt_time_of(opt_int(row, "delivered_at")?, "delivered_at")?,
    })
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
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
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
                Transition::Paid { .. } => Some(PaidEvent::for_paid_order(&next, now)?),
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
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
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
) -> Result<Vec<PaidEvent>, StoreError> {
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

pub(super) async fn undelivered_events(
    pool: &Pool,
    limit: u32,
) -> Result<Vec<PaidEvent>, StoreError> {
    events_where(pool, "delivered_at IS NULL", None, limit).await
}

pub(super) async fn events_for_order(
    pool: &Pool,
    out_trade_no: &OutTradeNo,
) -> Result<Vec<PaidEvent>, StoreError> {
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

pub(super) async fn list_stale(
    pool: &Pool,
    status: OrderStatus,
    updated_before: OffsetDateTime,
    limit: u32,
) -> Result<Vec<Order>, StoreError> {
    let query = &sql(&format!(
        "SELECT {ORDER_COLUMNS} FROM wxpay_orders WHERE status = ? AND updated_at < ? \
         ORDER BY updated_at, out_trade_no LIMIT ?"
    ));
    // `updated_at` is stored in whole milliseconds: "before 10.0005" is "before or at 10.000".
    let before = crate::order::to_millis(updated_before)
        + i64::from(crate::order::truncate_to_millis(updated_before) != updated_before);
    retry(|| async move {
        let rows = sqlx::query(query)
            .bind(status.as_str())
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| Ok(order_of(row)?.0)).collect()
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
        rows.iter()
            .map(|row| {
                Ok(Mismatch {
                    out_trade_no: field(
                        OutTradeNo::try_from(text(row, "out_trade_no")?),
                        "out_trade_no",
                    )?,
                    detail: text(row, "detail")?,
                    recorded_at: time_of(int(row, "recorded_at")?, "recorded_at")?,
                })
            })
            .collect()
    })
    .await
}
