-- Refunds (MySQL / MariaDB): their own table, the order's refund totals, and refund events
-- in the outbox. Existing rows keep their data: the new order columns start at 0, existing
-- outbox rows are paid events.

ALTER TABLE wxpay_orders
    ADD COLUMN refund_held_fen BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refunded_fen BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refund_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE wxpay_refunds (
    out_refund_no         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    out_trade_no          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    amount_fen            BIGINT      NOT NULL,
    reason                TEXT,
    status                VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    refund_id             TEXT,
    user_received_account TEXT,
    failure               TEXT,
    version               BIGINT      NOT NULL,
    created_at            BIGINT      NOT NULL,
    updated_at            BIGINT      NOT NULL,
    succeeded_at          BIGINT,
    KEY wxpay_refunds_order (out_trade_no, created_at),
    KEY wxpay_refunds_status_updated (status, updated_at),
    CONSTRAINT wxpay_refunds_order_fk FOREIGN KEY (out_trade_no) REFERENCES wxpay_orders (out_trade_no)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE wxpay_outbox
    ADD COLUMN kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'paid',
    ADD COLUMN out_refund_no VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin,
    ADD COLUMN refund_id TEXT,
    ADD COLUMN refund_status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin;
