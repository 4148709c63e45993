//! [`SqlxStore`]: the SQL store on SQLite, PostgreSQL or MySQL/MariaDB through sqlx.
//!
//! # How a transition is written
//!
//! Every order row has a `version` counter. A transition reads the order, decides with
//! [`Order::decide`](crate::order::Order::decide), then, in one database transaction,
//! `UPDATE wxpay_orders ... SET version = version + 1 WHERE out_trade_no = ? AND version = ?`,
//! inserts the paid event (for `Paid`) and the notification id (when given), and commits. If the
//! update matched no row, someone else changed the order in between: the transaction is rolled
//! back and the whole step runs again on the fresh row, where the repeat usually finds the
//! transition already applied. The version always changes, so MySQL's "changed rows" and
//! "matched rows" counts agree; PostgreSQL's and MySQL's row locks and SQLite's single writer
//! (the update is the transaction's first statement, so it waits on `busy_timeout` instead of
//! failing) make the conditional update atomic. Deadlocks, serialization failures and `SQLITE_BUSY`
//! are retried a few times with a short backoff.
//!
//! # Migrations
//!
//! Embedded (`core/migrations/{sqlite,postgres,mysql}`) and run by [`SqlxStore::connect`] with
//! sqlx's migrator, which records them in `_sqlx_migrations` and serialises concurrent runs.
//! wxpay's migration versions start at 900001 and its migrator ignores versions it does not
//! know, so it coexists with an app's own sqlx migrations in the same database; **the app's
//! migrator must likewise ignore wxpay's versions** (`Migrator::set_ignore_missing(true)`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    Event, InboxEntry, InboxOutcome, InsertOutcome, ListCursor, Mismatch, OrderCursor, OrderFilter,
    OrderStore, PruneBefore, PruneReport, RefundReservation, RefundUpdateOutcome, StoreError,
    TransitionOutcome,
};
use crate::clock::Clock;
use crate::fields::{OutRefundNo, OutTradeNo};
use crate::order::{NewOrder, Order, OrderStatus, Transition, truncate_to_millis};
use crate::refund::{NewRefund, Refund, RefundStatus, RefundUpdate};

/// How often a step that hit a transient database error (deadlock, serialization failure,
/// `SQLITE_BUSY`) or lost a compare-and-set race is tried before giving up.
const MAX_ATTEMPTS: u32 = 32;

/// How often the SQLite migrations are run before a failure is reported.
#[cfg(feature = "sqlite")]
const MIGRATION_ATTEMPTS: u32 = 10;

/// How often the MySQL / MariaDB migrations are run before a failure is reported.
#[cfg(feature = "mysql")]
const MYSQL_MIGRATION_ATTEMPTS: u32 = 10;

/// Placeholder style of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // Which variants are built depends on the features.
enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// `sql` with `?` placeholders rewritten for the backend (`$1`, `$2`, … on PostgreSQL). The
    /// statements of this module have no `?` inside string literals.
    fn sql(self, sql: &str) -> String {
        if self != Dialect::Postgres {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The clause that makes an `INSERT` skip a row whose `key` exists (empty on MySQL, where
    /// the duplicate is an error to catch: its `ON DUPLICATE KEY UPDATE` no-op reports one
    /// affected row under the `CLIENT_FOUND_ROWS` flag sqlx sets, so it cannot tell).
    fn on_conflict_do_nothing(self, key: &str) -> String {
        match self {
            Dialect::MySql => String::new(),
            Dialect::Sqlite | Dialect::Postgres => format!(" ON CONFLICT ({key}) DO NOTHING"),
        }
    }

    /// An insert into the inbox that does nothing when the id is there already.
    fn insert_inbox_if_absent(self) -> &'static str {
        match self {
            Dialect::MySql => {
                "INSERT INTO wxpay_inbox (event_id, out_trade_no, received_at) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE event_id = event_id"
            }
            Dialect::Sqlite | Dialect::Postgres => {
                "INSERT INTO wxpay_inbox (event_id, out_trade_no, received_at) VALUES (?, ?, ?) \
                 ON CONFLICT (event_id) DO NOTHING"
            }
        }
    }
}

const ORDER_COLUMNS: &str = "out_trade_no, provider, appid, mchid, openid, amount_fen, currency, \
     description, attach, status, prepay_id, prepay_expires_at, transaction_id, paid_at, payer, \
     failure_reason, refund_held_fen, refunded_fen, refund_count, version, created_at, updated_at";

const EVENT_COLUMNS: &str = "event_id, out_trade_no, transaction_id, amount_fen, currency, payer, \
     attach, paid_at, created_at, delivered_at, kind, out_refund_no, refund_id, refund_status";

const REFUND_COLUMNS: &str = "out_refund_no, out_trade_no, amount_fen, reason, status, refund_id, \
     user_received_account, failure, version, created_at, updated_at, succeeded_at";

fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(err))
}

fn migrate_error(err: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// A migration: version, description, SQL.
type EmbeddedMigration = (i64, &'static str, &'static str);

#[cfg(feature = "sqlite")]
const MIGRATIONS_SQLITE: &[EmbeddedMigration] = &[
    (
        900001,
        "wxpay init",
        include_str!("../../../migrations/sqlite/900001_wxpay_init.sql"),
    ),
    (
        900002,
        "wxpay refunds",
        include_str!("../../../migrations/sqlite/900002_wxpay_refunds.sql"),
    ),
    (
        900003,
        "wxpay retention",
        include_str!("../../../migrations/sqlite/900003_wxpay_retention.sql"),
    ),
    (
        900004,
        "wxpay order listing",
        include_str!("../../../migrations/sqlite/900004_wxpay_order_listing.sql"),
    ),
    (
        900005,
        "wxpay inbox by order",
        include_str!("../../../migrations/sqlite/900005_wxpay_inbox_by_order.sql"),
    ),
    (
        900006,
        "wxpay instances",
        include_str!("../../../migrations/sqlite/900006_wxpay_instances.sql"),
    ),
];

#[cfg(feature = "postgres")]
const MIGRATIONS_POSTGRES: &[EmbeddedMigration] = &[
    (
        900001,
        "wxpay init",
        include_str!("../../../migrations/postgres/900001_wxpay_init.sql"),
    ),
    (
        900002,
        "wxpay refunds",
        include_str!("../../../migrations/postgres/900002_wxpay_refunds.sql"),
    ),
    (
        900003,
        "wxpay retention",
        include_str!("../../../migrations/postgres/900003_wxpay_retention.sql"),
    ),
    (
        900004,
        "wxpay order listing",
        include_str!("../../../migrations/postgres/900004_wxpay_order_listing.sql"),
    ),
    (
        900005,
        "wxpay inbox by order",
        include_str!("../../../migrations/postgres/900005_wxpay_inbox_by_order.sql"),
    ),
    (
        900006,
        "wxpay instances",
        include_str!("../../../migrations/postgres/900006_wxpay_instances.sql"),
    ),
];

#[cfg(feature = "mysql")]
const MIGRATIONS_MYSQL: &[EmbeddedMigration] = &[
    (
        900001,
        "wxpay init",
        include_str!("../../../migrations/mysql/900001_wxpay_init.sql"),
    ),
    (
        900002,
        "wxpay refunds",
        include_str!("../../../migrations/mysql/900002_wxpay_refunds.sql"),
    ),
    (
        900003,
        "wxpay retention",
        include_str!("../../../migrations/mysql/900003_wxpay_retention.sql"),
    ),
    (
        900004,
        "wxpay order listing",
        include_str!("../../../migrations/mysql/900004_wxpay_order_listing.sql"),
    ),
    (
        900005,
        "wxpay inbox by order",
        include_str!("../../../migrations/mysql/900005_wxpay_inbox_by_order.sql"),
    ),
    (
        900006,
        "wxpay instances",
        include_str!("../../../migrations/mysql/900006_wxpay_instances.sql"),
    ),
];

/// The migrations compiled into the binary. (`sqlx::migrate!` would need sqlx's `macros`
/// feature; this is the same thing through sqlx's public `MigrationSource`.)
#[derive(Debug)]
struct EmbeddedMigrations(&'static [EmbeddedMigration]);

impl<'s> sqlx::migrate::MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn Future<Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>>
                + Send
                + 's,
        >,
    > {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    version,
                    description.into(),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into(),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// A migrator for `migrations` that ignores versions applied by someone else (the app's own
/// sqlx migrations in the same database).
async fn migrator(migrations: EmbeddedMigrations) -> Result<sqlx::migrate::Migrator, StoreError> {
    let mut migrator = sqlx::migrate::Migrator::new(migrations)
        .await
        .map_err(migrate_error)?;
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `err` is worth trying again: a deadlock, a serialization failure, a lock timeout or
/// SQLite's busy/locked.
fn is_transient(err: &StoreError) -> bool {
    let StoreError::Backend(source) = err else {
        return false;
    };
    let Some(sqlx::Error::Database(db)) = source.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    #[cfg(feature = "mysql")]
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
        return matches!(mysql.number(), 1213 | 1205);
    }
    match db.code().as_deref() {
        // serialization_failure, deadlock_detected, lock_not_available.
        Some("40001" | "40P01" | "55P03") => true,
        // SQLite (extended) result codes: SQLITE_BUSY = 5, SQLITE_LOCKED = 6.
        Some(code) => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
        None => false,
    }
}

/// Runs `step` until it succeeds or fails with a non-transient error, at most `MAX_ATTEMPTS`
/// times, backing off a little longer each time.
async fn retry<T, F, Fut>(mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match step().await {
            Err(err) if attempt < MAX_ATTEMPTS && is_transient(&err) => {
                tracing::debug!(attempt, error = %err, "transient store error, retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

fn backoff(attempt: u32) -> std::time::Duration {
    // 2, 4, 6, … ms plus jitter from the clock's sub-millisecond digits, capped at 50 ms.
    let jitter = u64::from(OffsetDateTime::now_utc().nanosecond() % 2_000_000) / 1_000;
    std::time::Duration::from_micros((u64::from(attempt) * 2_000 + jitter).min(50_000))
}

fn i64_of(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| corrupt(format_args!("{what} {value} does not fit BIGINT")))
}

fn millis(time: OffsetDateTime) -> i64 {
    crate::order::to_millis(time)
}

fn time_of(millis: i64, column: &str) -> Result<OffsetDateTime, StoreError> {
    crate::order::from_millis(millis)
        .ok_or_else(|| corrupt(format_args!("{column} {millis} is out of range")))
}

fn opt_time_of(millis: Option<i64>, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    millis.map(|m| time_of(m, column)).transpose()
}

fn field<T, E: fmt::Display>(value: Result<T, E>, column: &str) -> Result<T, StoreError> {
    value.map_err(|e| corrupt(format_args!("{column}: {e}")))
}

fn amount_of(fen: i64) -> Result<crate::fields::Amount, StoreError> {
    let fen = u64::try_from(fen).map_err(|_| corrupt(format_args!("amount_fen {fen}")))?;
    field(crate::fields::Amount::from_fen(fen), "amount_fen")
}

#[cfg(feature = "sqlite")]
mod sqlite {
    type Db = sqlx::Sqlite;
    const DIALECT: super::Dialect = super::Dialect::Sqlite;
    include!("ops.rs");
}

#[cfg(feature = "postgres")]
mod postgres {
    type Db = sqlx::Postgres;
    const DIALECT: super::Dialect = super::Dialect::Postgres;
    include!("ops.rs");
}

#[cfg(feature = "mysql")]
mod mysql {
    type Db = sqlx::MySql;
    const DIALECT: super::Dialect = super::Dialect::MySql;
    include!("ops.rs");
}

#[derive(Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// Calls the backend's `ops` function `$f` with the pool and the remaining arguments.
macro_rules! dispatch {
    ($self:ident . $f:ident ( $($arg:expr),* )) => {
        match &$self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => sqlite::$f(pool, $($arg),*).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => postgres::$f(pool, $($arg),*).await,
            #[cfg(feature = "mysql")]
            Pool::MySql(pool) => mysql::$f(pool, $($arg),*).await,
        }
    };
}

/// Options for [`SqlxStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqlxStoreOptions {
    /// Most connections the pool opens (at least 1). Default 10.
    pub max_connections: u32,
}

impl Default for SqlxStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
        }
    }
}

impl SqlxStoreOptions {
    /// These options with at most `max_connections` pooled connections.
    pub fn max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }
}

/// An [`OrderStore`] in SQLite, PostgreSQL or MySQL/MariaDB, chosen by the URL given to
/// [`SqlxStore::connect`]. Tables are prefixed `wxpay_`.
///
/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct SqlxStore {
    pool: Pool,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqlxStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxStore")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

impl SqlxStore {
    /// Connects to the database at `url` and runs the embedded migrations.
    ///
    /// - `sqlite://PATH` (feature `sqlite`): the file is created if missing; WAL journal,
    ///   `synchronous = NORMAL`, foreign keys on, 10 s busy timeout. `sqlite::memory:` works too
    ///   (the data lives as long as the pool).
    /// - `postgres://…` or `postgresql://…` (feature `postgres`).
    /// - `mysql://…` or `mariadb://…` (feature `mysql`).
    ///
    /// A URL of a backend this build lacks is [`StoreError::UnsupportedUrl`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlxStoreOptions::default()).await
    }

    /// [`SqlxStore::connect`] with pool options.
    pub async fn connect_with(url: &str, options: SqlxStoreOptions) -> Result<Self, StoreError> {
        let size = options.max_connections.max(1);
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        let pool = match scheme {
            "sqlite" => Self::sqlite_pool(url, size).await?,
            "postgres" | "postgresql" => Self::postgres_pool(url, size).await?,
            "mysql" | "mariadb" => Self::mysql_pool(url, size).await?,
            _ => {
                return Err(StoreError::UnsupportedUrl(format!(
                    "{scheme:?}: expected sqlite:, postgres:, postgresql:, mysql: or mariadb:"
                )));
            }
        };
        Ok(Self {
            pool,
            clock: crate::clock::system(),
        })
    }

    /// This store, stamping times from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// `"sqlite"`, `"postgres"` or `"mysql"`.
    pub fn backend_name(&self) -> &'static str {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => "mysql",
        }
    }

    /// Closes the connection pool, waiting for the connections in use to be returned.
    pub async fn close(&self) {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => pool.close().await,
            #[cfg(feature = "mysql")]
            Pool::MySql(pool) => pool.close().await,
        }
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite_pool(url: &str, max_connections: u32) -> Result<Pool, StoreError> {
        use std::str::FromStr;

        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };

        let options = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        // Two pools (or processes) opening a new file at once can race: switching it to WAL can
        // fail with "database is locked", and since sqlx cannot lock an SQLite database for its
        // migrator as it does PostgreSQL and MySQL, the loser's migration transaction can fail
        // ("table already exists") and roll back. Trying again then finds the work done.
        let migrator = migrator(EmbeddedMigrations(MIGRATIONS_SQLITE)).await?;
        let mut attempt = 0;
        let pool = loop {
            attempt += 1;
            let opened = match SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(options.clone())
                .await
            {
                Ok(pool) => match migrator.run(&pool).await {
                    Ok(()) => Ok(pool),
                    Err(err) => Err(migrate_error(err)),
                },
                Err(err) => Err(backend(err)),
            };
            match opened {
                Ok(pool) => break pool,
                Err(err) if attempt < MIGRATION_ATTEMPTS => {
                    tracing::debug!(attempt, error = %err, "opening SQLite raced, retrying");
                    tokio::time::sleep(backoff(attempt) * 10).await;
                }
                Err(err) => return Err(err),
            }
        };
        Ok(Pool::Sqlite(pool))
    }

    #[cfg(not(feature = "sqlite"))]
    async fn sqlite_pool(_url: &str, _max_connections: u32) -> Result<Pool, StoreError> {
        Err(missing_feature("sqlite"))
    }

    #[cfg(feature = "postgres")]
    async fn postgres_pool(url: &str, max_connections: u32) -> Result<Pool, StoreError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await
            .map_err(backend)?;
        migrator(EmbeddedMigrations(MIGRATIONS_POSTGRES))
            .await?
            .run(&pool)
            .await
            .map_err(migrate_error)?;
        Ok(Pool::Postgres(pool))
    }

    #[cfg(not(feature = "postgres"))]
    async fn postgres_pool(_url: &str, _max_connections: u32) -> Result<Pool, StoreError> {
        Err(missing_feature("postgres"))
    }

    #[cfg(feature = "mysql")]
    async fn mysql_pool(url: &str, max_connections: u32) -> Result<Pool, StoreError> {
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await
            .map_err(backend)?;
        // sqlx serialises migrators with `GET_LOCK(name, -1)`, but MariaDB (unlike MySQL) does
        // not wait on a negative timeout: two processes (or tests) opening a fresh database at
        // once can both apply the migration, and the loser fails on the bookkeeping row (1062
        // duplicate entry) or on a version the winner has not finished (dirty). Trying again
        // after a pause finds the work done.
        let migrator = migrator(EmbeddedMigrations(MIGRATIONS_MYSQL)).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match migrator.run(&pool).await {
                Ok(()) => break,
                Err(err) if attempt < MYSQL_MIGRATION_ATTEMPTS => {
                    tracing::debug!(attempt, error = %err, "migrating MySQL raced, retrying");
                    tokio::time::sleep(backoff(attempt) * 10).await;
                }
                Err(err) => return Err(migrate_error(err)),
            }
        }
        Ok(Pool::MySql(pool))
    }

    #[cfg(not(feature = "mysql"))]
    async fn mysql_pool(_url: &str, _max_connections: u32) -> Result<Pool, StoreError> {
        Err(missing_feature("mysql"))
    }

    fn now(&self) -> OffsetDateTime {
        truncate_to_millis(self.clock.now())
    }
}

#[allow(dead_code)] // Unused when every backend feature is on.
fn missing_feature(feature: &str) -> StoreError {
    StoreError::UnsupportedUrl(format!(
        "this build of wxpay-core lacks the `{feature}` feature"
    ))
}

#[async_trait]
impl OrderStore for SqlxStore {
    async fn insert_if_absent(&self, order: NewOrder) -> Result<InsertOutcome, StoreError> {
        let order = order.into_order(self.now());
        dispatch!(self.insert_if_absent(&order))
    }

    async fn get(&self, out_trade_no: &OutTradeNo) -> Result<Option<Order>, StoreError> {
        dispatch!(self.get(out_trade_no))
    }

    async fn transition_with_notification(
        &self,
        out_trade_no: &OutTradeNo,
        expected: OrderStatus,
        transition: Transition,
        notification_id: Option<&str>,
    ) -> Result<TransitionOutcome, StoreError> {
        let clock = &*self.clock;
        dispatch!(self.transition(clock, out_trade_no, expected, &transition, notification_id))
    }

    async fn record_notification(
        &self,
        event_id: &str,
        out_trade_no: Option<&OutTradeNo>,
    ) -> Result<InboxOutcome, StoreError> {
        let now = self.now();
        dispatch!(self.record_notification(event_id, out_trade_no, now))
    }

    async fn has_notification(&self, event_id: &str) -> Result<bool, StoreError> {
        dispatch!(self.has_notification(event_id))
    }

    async fn undelivered_events(&self, limit: u32) -> Result<Vec<Event>, StoreError> {
        dispatch!(self.undelivered_events(limit))
    }

    async fn events_for_order(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Event>, StoreError> {
        dispatch!(self.events_for_order(out_trade_no))
    }

    async fn mark_delivered(&self, event_id: &str) -> Result<(), StoreError> {
        let now = self.now();
        dispatch!(self.mark_delivered(event_id, now))
    }

    async fn claim_undelivered_events(
        &self,
        holder: &str,
        ttl: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let now = self.now();
        let until = super::later(now, ttl);
        dispatch!(self.claim_undelivered_events(holder, now, until, limit))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let until = super::later(now, ttl);
        dispatch!(self.acquire_lease(name, holder, now, until))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        dispatch!(self.release_lease(name, holder))
    }

    async fn list_stale_after(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        after: Option<&OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        dispatch!(self.list_stale_after(status, updated_before, after, limit))
    }

    async fn list_orders(
        &self,
        filter: &OrderFilter,
        before: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        dispatch!(self.list_orders(filter, before, limit))
    }

    async fn prune(&self, before: &PruneBefore) -> Result<PruneReport, StoreError> {
        dispatch!(self.prune(before))
    }

    async fn record_mismatch(
        &self,
        out_trade_no: &OutTradeNo,
        detail: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        dispatch!(self.record_mismatch(out_trade_no, detail, now))
    }

    async fn mismatches(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Mismatch>, StoreError> {
        dispatch!(self.mismatches(out_trade_no))
    }

    async fn recent_mismatches(&self, limit: u32) -> Result<Vec<Mismatch>, StoreError> {
        dispatch!(self.recent_mismatches(limit))
    }

    async fn notifications_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        dispatch!(self.notifications_for_order(out_trade_no))
    }

    async fn count_orders_by_status(&self) -> Result<Vec<(OrderStatus, u64)>, StoreError> {
        dispatch!(self.count_orders_by_status())
    }

    async fn reserve_refund(&self, refund: NewRefund) -> Result<RefundReservation, StoreError> {
        let now = self.now();
        dispatch!(self.reserve_refund(&refund, now))
    }

    async fn update_refund(
        &self,
        out_refund_no: &OutRefundNo,
        update: RefundUpdate,
        notification_id: Option<&str>,
    ) -> Result<RefundUpdateOutcome, StoreError> {
        let clock = &*self.clock;
        dispatch!(self.update_refund(clock, out_refund_no, &update, notification_id))
    }

    async fn get_refund(&self, out_refund_no: &OutRefundNo) -> Result<Option<Refund>, StoreError> {
        dispatch!(self.get_refund(out_refund_no))
    }

    async fn refunds_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<Refund>, StoreError> {
        dispatch!(self.refunds_for_order(out_trade_no))
    }

    async fn list_stale_refunds(
        &self,
        status: RefundStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        dispatch!(self.list_stale_refunds(status, updated_before, limit))
    }
}
