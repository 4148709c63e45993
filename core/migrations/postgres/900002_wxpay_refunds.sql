-- Refunds (PostgreSQL): their own table, the order's refund totals, and refund events in the
-- outbox. Existing rows keep their data: the new order columns start at 0, existing outbox
-- rows are paid events.

ALTER TABLE wxpay_orders
    ADD COLUMN refund_held_fen BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refunded_fen BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refund_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE wxpay_refunds (
    out_refund_no         TEXT    NOT NULL PRIMARY KEY,
    out_trade_no          TEXT    NOT NULL REFERENCES wxpay_orders (out_trade_no),
    amount_fen            BIGINT  NOT NULL,
    reason                TEXT,
    status                TEXT    NOT NULL,
    refund_id             TEXT,
    user_received_account TEXT,
    failure               TEXT,
    version               BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    succeeded_at          BIGINT
);
CREATE INDEX wxpay_refunds_order ON wxpay_refunds (out_trade_no, created_at);
CREATE INDEX wxpay_refunds_status_updated ON wxpay_refunds (status, updated_at);

ALTER TABLE wxpay_outbox
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'paid',
    ADD COLUMN out_refund_no TEXT,
    ADD COLUMN refund_id TEXT,
    ADD COLUMN refund_status TEXT;
