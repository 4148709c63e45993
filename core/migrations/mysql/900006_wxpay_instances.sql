-- Several engine instances on one database: a claim on each outbox event (who delivers it,
-- until when) and named leases (one reconciler at a time). No data changes.

ALTER TABLE wxpay_outbox ADD COLUMN claimed_by VARCHAR(191) NULL, ADD COLUMN claimed_until BIGINT NULL;

CREATE TABLE wxpay_leases (
    name       VARCHAR(191) NOT NULL PRIMARY KEY,
    holder     VARCHAR(191) NOT NULL,
    expires_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
