//! QFPay (seed 002): `POST /trade/v1/payment` with `pay_type` 800207 (WeChat JSAPI) and
//! `sub_openid`, requests signed in the `X-QF-SIGN` header, asynchronous notifications signed
//! over the raw body, and the `get_weixin_oauth_code` / `get_weixin_openid` openid flow.

pub mod sign;
