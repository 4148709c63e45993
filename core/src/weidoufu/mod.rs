//! weidoufu (seed 004): `POST /pay/miniapp` for WeChat (`pay_type` 1, `openid`) and Alipay
//! (`pay_type` 2, `buyer_id`) mini programs, signed with the `secret_key`, and its payment
//! callback.
