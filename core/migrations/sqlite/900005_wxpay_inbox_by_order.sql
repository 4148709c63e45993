-- An order's notifications, for the operator's order page. No data changes.

CREATE INDEX wxpay_inbox_order ON wxpay_inbox (out_trade_no, received_at);
