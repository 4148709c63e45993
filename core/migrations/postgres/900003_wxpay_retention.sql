-- Retention: indexes for pruning old bookkeeping rows (inbox entries, delivered outbox events,
-- mismatches) by time. Orders and refunds are never pruned; no data changes.

CREATE INDEX wxpay_inbox_received ON wxpay_inbox (received_at);
CREATE INDEX wxpay_outbox_delivered ON wxpay_outbox (delivered_at);
CREATE INDEX wxpay_mismatches_recorded ON wxpay_mismatches (recorded_at);
