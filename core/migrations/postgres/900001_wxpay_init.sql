-- wxpay tables (PostgreSQL). Times are BIGINT Unix milliseconds, UTC.
-- The version 900001 is chosen to stay clear of an app's own sqlx migrations
-- (small integers or 14-digit timestamps) sharing the _sqlx_migrations table.

CREATE TABLE wxpay_orders (
    out_trade_no      TEXT    NOT NULL PRIMARY KEY,
    provider          TEXT    NOT NULL,
    appid             TEXT,
    mchid             TEXT,
    openid            TEXT    NOT NULL,
    amount_fen        BIGINT  NOT NULL,
    currency          TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    attach            TEXT,
    status            TEXT    NOT NULL,
    prepay_id         TEXT,
    prepay_expires_at BIGINT,
    transaction_id    TEXT,
    paid_at           BIGINT,
    payer             TEXT,
    failure_reason    TEXT,
    version           BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX wxpay_orders_status_updated ON wxpay_orders (status, updated_at);

CREATE TABLE wxpay_inbox (
    event_id     TEXT   NOT NULL PRIMARY KEY,
    out_trade_no TEXT,
    received_at  BIGINT NOT NULL
);

CREATE TABLE wxpay_outbox (
    seq            BIGSERIAL PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    out_trade_no   TEXT    NOT NULL REFERENCES wxpay_orders (out_trade_no),
    transaction_id TEXT    NOT NULL,
    amount_fen     BIGINT  NOT NULL,
    currency       TEXT    NOT NULL,
    payer          TEXT,
    attach         TEXT,
    paid_at        BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    delivered_at   BIGINT
);
CREATE INDEX wxpay_outbox_order ON wxpay_outbox (out_trade_no);
CREATE INDEX wxpay_outbox_undelivered ON wxpay_outbox (seq) WHERE delivered_at IS NULL;

CREATE TABLE wxpay_mismatches (
    id           BIGSERIAL PRIMARY KEY,
    out_trade_no TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    recorded_at  BIGINT  NOT NULL
);
CREATE INDEX wxpay_mismatches_order ON wxpay_mismatches (out_trade_no, id);
