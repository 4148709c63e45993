-- wxpay tables (MySQL / MariaDB). Times are BIGINT Unix milliseconds, UTC.
-- The version 900001 is chosen to stay clear of an app's own sqlx migrations
-- (small integers or 14-digit timestamps) sharing the _sqlx_migrations table.
-- Keys are binary-collated: order numbers and event ids are case-sensitive.

CREATE TABLE wxpay_orders (
    out_trade_no      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    provider          TEXT        NOT NULL,
    appid             TEXT,
    mchid             TEXT,
    openid            TEXT        NOT NULL,
    amount_fen        BIGINT      NOT NULL,
    currency          VARCHAR(8)  NOT NULL,
    description       TEXT        NOT NULL,
    attach            TEXT,
    status            VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    prepay_id         TEXT,
    prepay_expires_at BIGINT,
    transaction_id    TEXT,
    paid_at           BIGINT,
    payer             TEXT,
    failure_reason    TEXT,
    version           BIGINT      NOT NULL,
    created_at        BIGINT      NOT NULL,
    updated_at        BIGINT      NOT NULL,
    KEY wxpay_orders_status_updated (status, updated_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE wxpay_inbox (
    event_id     VARCHAR(191) NOT NULL PRIMARY KEY,
    out_trade_no VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin,
    received_at  BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE wxpay_outbox (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id       VARCHAR(191) NOT NULL,
    out_trade_no   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    transaction_id TEXT         NOT NULL,
    amount_fen     BIGINT       NOT NULL,
    currency       VARCHAR(8)   NOT NULL,
    payer          TEXT,
    attach         TEXT,
    paid_at        BIGINT       NOT NULL,
    created_at     BIGINT       NOT NULL,
    delivered_at   BIGINT,
    UNIQUE KEY wxpay_outbox_event (event_id),
    KEY wxpay_outbox_order (out_trade_no),
    KEY wxpay_outbox_undelivered (delivered_at, seq),
    CONSTRAINT wxpay_outbox_order_fk FOREIGN KEY (out_trade_no) REFERENCES wxpay_orders (out_trade_no)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE wxpay_mismatches (
    id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    out_trade_no VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    detail       TEXT        NOT NULL,
    recorded_at  BIGINT      NOT NULL,
    KEY wxpay_mismatches_order (out_trade_no, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
