//! Shared state of a running sandbox: keys, orders, the delivery log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::config::{NotifyFaults, SandboxConfig};
use crate::crypto::RsaVerifier;
use crate::delivery::DeliveryLog;
use crate::keys::{MerchantMaterial, PlatformKeys, PlatformMaterial};

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
}

/// All orders of the (single) merchant, with indexes.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    pub(crate) by_out_trade_no: HashMap<String, Order>,
    pub(crate) by_prepay_id: HashMap<String, String>,
    pub(crate) by_transaction_id: HashMap<String, String>,
}

/// Everything the handlers and delivery tasks share.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) merchant: MerchantMaterial,
    pub(crate) merchant_verifier: RsaVerifier,
    pub(crate) platform: PlatformKeys,
    pub(crate) platform_material: PlatformMaterial,
    pub(crate) api_v3_key: String,
    pub(crate) orders: Mutex<Orders>,
    pub(crate) deliveries: DeliveryLog,
    pub(crate) faults: Mutex<NotifyFaults>,
    pub(crate) http: reqwest::Client,
    pub(crate) tasks: Mutex<JoinSet<()>>,
    pub(crate) started: Instant,
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
