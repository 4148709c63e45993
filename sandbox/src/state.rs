//! Shared state of a running sandbox: keys, orders, the delivery log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::config::{NotifyFaults, SandboxConfig};
use crate::crypto::RsaVerifier;
use crate::delivery::DeliveryLog;
use crate::gateway::GatewayMaterial;
use crate::keys::{MerchantMaterial, PlatformKeys, PlatformMaterial};
use crate::v2::SignType;

/// The state of a JSAPI trade, as `trade_state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TradeState {
    NotPay,
    Success,
    Closed,
    PayError,
}

impl TradeState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotPay => "NOTPAY",
            Self::Success => "SUCCESS",
            Self::Closed => "CLOSED",
            Self::PayError => "PAYERROR",
        }
    }

    pub(crate) fn desc(self) -> &'static str {
        match self {
            Self::NotPay => "订单未支付",
            Self::Success => "支付成功",
            Self::Closed => "订单已关闭",
            Self::PayError => "支付失败，请重新下单支付",
        }
    }
}

/// A trade as the emulated upstream holds it ([`Sandbox::trade`](crate::Sandbox::trade)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeView {
    /// `NOTPAY`, `SUCCESS`, `CLOSED` or `PAYERROR`.
    pub state: &'static str,
    /// The order total in fen.
    pub total: i64,
    /// Every prepay id issued for the order, sorted (one, unless a prepay expired and was
    /// renewed).
    pub prepay_ids: Vec<String>,
}

/// Which upstream protocol created an order, and what that protocol needs to remember.
#[derive(Clone, Debug)]
pub(crate) enum Protocol {
    /// API v3 (`POST /v3/pay/transactions/jsapi`): paid with an RSA `paySign`.
    V3,
    /// API v2 (`POST /pay/unifiedorder`): paid with a `paySign` of this type; notified in XML.
    V2 { sign_type: SignType },
    /// Created by the gateway on its own WeChat merchant; the shop is called back in a form.
    Gateway(Box<GatewayTrade>),
    /// Created by QFPay (`/trade/v1/payment`) on its own WeChat merchant; the shop is notified
    /// in signed JSON.
    Qfpay(Box<QfpayTrade>),
    /// Created by weidoufu (`/pay/miniapp`): a WeChat order on weidoufu's own merchant, or an
    /// Alipay trade; the shop is called back in a signed form.
    Weidoufu(Box<WeidoufuTrade>),
}

/// What the emulated QFPay keeps about a payment request, besides the WeChat order it made.
#[derive(Clone, Debug)]
pub(crate) struct QfpayTrade {
    /// The shop's `out_trade_no`.
    pub(crate) out_trade_no: String,
    /// QFPay's transaction number.
    pub(crate) syssn: String,
    /// `txcurrcd` as sent.
    pub(crate) txcurrcd: String,
    /// `txdtm` as sent (merchant local time).
    pub(crate) txdtm: String,
    /// When QFPay registered the request (`sysdtm`).
    pub(crate) sysdtm: OffsetDateTime,
    /// `goods_name`, if sent.
    pub(crate) goods_name: Option<String>,
    /// `mchid`, if sent.
    pub(crate) mchid: Option<String>,
    /// `notify_url`, if sent (no notification without one).
    pub(crate) notify_url: Option<String>,
}

/// How a weidoufu order is paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WeidoufuPayment {
    /// `pay_type` 1: a WeChat JSAPI order for `openid` (the order's `openid`).
    Wechat,
    /// `pay_type` 2: an Alipay trade for `buyer_id`.
    Alipay {
        /// The payer's Alipay user id.
        buyer_id: String,
        /// Alipay's `trade_no` handed to the mini program.
        trade_no: String,
    },
}

/// What the emulated weidoufu keeps about a `/pay/miniapp` request.
#[derive(Clone, Debug)]
pub(crate) struct WeidoufuTrade {
    /// The shop's `out_order_no`.
    pub(crate) out_order_no: String,
    /// weidoufu's order number.
    pub(crate) mch_trade_no: String,
    /// WeChat or Alipay.
    pub(crate) payment: WeidoufuPayment,
}

/// What the emulated gateway keeps about a precreate, besides the WeChat order it made.
#[derive(Clone, Debug)]
pub(crate) struct GatewayTrade {
    pub(crate) biz_id: String,
    pub(crate) biz_order_id: String,
    pub(crate) ucid: Option<String>,
    pub(crate) trade_id: String,
    pub(crate) title: String,
}

/// A JSAPI order as the emulated WeChat Pay stores it.
#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub(crate) appid: String,
    pub(crate) mchid: String,
    pub(crate) out_trade_no: String,
    pub(crate) description: String,
    pub(crate) attach: Option<String>,
    pub(crate) notify_url: String,
    pub(crate) time_expire: Option<OffsetDateTime>,
    pub(crate) total: i64,
    pub(crate) currency: String,
    pub(crate) openid: String,
    /// The prepay request body as parsed JSON: "the same parameters" means an equal value.
    pub(crate) request: serde_json::Value,
    pub(crate) prepay_id: String,
    pub(crate) prepay_expires_at: OffsetDateTime,
    pub(crate) state: TradeState,
    pub(crate) transaction_id: Option<String>,
    pub(crate) success_time: Option<OffsetDateTime>,
    pub(crate) protocol: Protocol,
}

impl Order {
    /// The order number the shop knows: `out_trade_no`, or the gateway's `biz_order_id`.
    pub(crate) fn shop_order_no(&self) -> &str {
        match &self.protocol {
            Protocol::Gateway(g) => &g.biz_order_id,
            Protocol::Qfpay(q) => &q.out_trade_no,
            Protocol::Weidoufu(w) => &w.out_order_no,
            Protocol::V3 | Protocol::V2 { .. } => &self.out_trade_no,
        }
    }
}

/// All orders of the (single) merchant, with indexes.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    pub(crate) by_out_trade_no: HashMap<String, Order>,
    pub(crate) by_prepay_id: HashMap<String, String>,
    pub(crate) by_transaction_id: HashMap<String, String>,
    /// Gateway orders: `biz_order_id` → the gateway's own `out_trade_no`.
    pub(crate) by_biz_order_id: HashMap<String, String>,
    /// QFPay orders: the shop's `out_trade_no` → QFPay's own `out_trade_no`.
    pub(crate) by_qfpay_out_trade_no: HashMap<String, String>,
    /// QFPay orders: `syssn` → QFPay's own `out_trade_no`.
    pub(crate) by_qfpay_syssn: HashMap<String, String>,
    /// weidoufu orders: the shop's `out_order_no` → weidoufu's own `out_trade_no`.
    pub(crate) by_weidoufu_out_order_no: HashMap<String, String>,
    /// weidoufu Alipay trades: `trade_no` → weidoufu's own `out_trade_no`.
    pub(crate) by_alipay_trade_no: HashMap<String, String>,
    /// Refunds of every protocol by `out_refund_no`.
    pub(crate) refunds: HashMap<String, crate::refunds::Refund>,
}

/// Everything the handlers and delivery tasks share.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) merchant: MerchantMaterial,
    pub(crate) merchant_verifier: RsaVerifier,
    pub(crate) platform: PlatformKeys,
    pub(crate) platform_material: PlatformMaterial,
    pub(crate) api_v3_key: String,
    pub(crate) v2_api_key: String,
    pub(crate) gateway: GatewayMaterial,
    /// The API v2 key of the gateway's own WeChat merchant (never shown to the shop).
    pub(crate) gateway_wechat_key: String,
    pub(crate) qfpay: crate::qfpay::QfpayMaterial,
    pub(crate) weidoufu: crate::weidoufu::WeidoufuMaterial,
    pub(crate) openid: crate::openid::OpenidState,
    pub(crate) orders: Mutex<Orders>,
    pub(crate) deliveries: DeliveryLog,
    pub(crate) faults: Mutex<NotifyFaults>,
    pub(crate) refund_behaviour: Mutex<crate::refunds::RefundBehaviour>,
    pub(crate) prepay_faults: Mutex<crate::prepay_faults::PrepayFaults>,
    pub(crate) http: reqwest::Client,
    pub(crate) tasks: Mutex<JoinSet<()>>,
    pub(crate) started: Instant,
    /// The `Wechatpay-Serial` the merchant's API v3 requests last named: in both mode,
    /// notifications are signed with that key, as WeChat signs for the key the merchant's SDK
    /// uses.
    pub(crate) merchant_serial: Mutex<Option<String>>,
}

/// Locks a mutex, recovering from poisoning (the sandbox's state stays usable after a panic in
/// a test's task).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Spawns a background task owned by the sandbox (aborted when it stops).
    pub(crate) fn spawn<F>(self: &Arc<Self>, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut);
    }
}
