-- The operator's order list: newest first, by creation time. No data changes.

CREATE INDEX wxpay_orders_created ON wxpay_orders (created_at, out_trade_no);
