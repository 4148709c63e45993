-- Several engine instances on one database: a claim on each outbox event (who delivers it,
-- until when) and named leases (one reconciler at a time). No data changes.

ALTER TABLE wxpay_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE wxpay_outbox ADD COLUMN claimed_until BIGINT;

CREATE TABLE wxpay_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
