//! Refunds, protocol-neutral: the ledger of every upstream's refunds, the rule that refunds
//! never exceed what was paid, and how a refund settles (after a short delay, as the test
//! asked: success, abnormal, closed, or left processing), with the upstream's notification.
//!
//! Each protocol module parses its own refund request into a [`RefundAsk`], calls [`accept`],
//! answers in its own format, and says how its notification of a settled refund looks
//! ([`Notifier`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{Order, Shared, TradeState, lock};

/// How the sandbox settles the refunds it accepts from now on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundOutcome {
    /// The money reaches the payer: `SUCCESS`, then a notification.
    #[default]
    Success,
    /// The payer's account cannot take it: `ABNORMAL`, then a notification.
    Abnormal,
    /// The upstream gives up: `CLOSED`, then a notification.
    Closed,
    /// Stays `PROCESSING` with no notification, until [`settle`](crate::Sandbox::settle_refund).
    Processing,
}

/// How refunds behave: their outcome, how long they take, and a refusal to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundBehaviour {
    /// What accepted refunds become.
    pub outcome: RefundOutcome,
    /// How long after acceptance they settle.
    pub delay: Duration,
    /// Refuse the next refund requests with this upstream error code (the protocol's own
    /// refusal, e.g. API v3 `403 NOT_ENOUGH`), once per request, this many times.
    pub refuse_next: u32,
    /// Answer the next refund requests with a server error *after* accepting them (the
    /// "accepted, but the answer was lost" fault), this many times; a client's retries of the
    /// same refund count.
    pub lose_answer_next: u32,
}

impl Default for RefundBehaviour {
    fn default() -> Self {
        Self {
            outcome: RefundOutcome::Success,
            delay: Duration::from_millis(50),
            refuse_next: 0,
            lose_answer_next: 0,
        }
    }
}

/// A refund's state, with WeChat Pay's spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Accepted, not settled.
    Processing,
    /// Money back with the payer.
    Success,
    /// Closed upstream.
    Closed,
    /// The payer's account could not take it.
    Abnormal,
}

impl RefundState {
    /// `PROCESSING`, `SUCCESS`, `CLOSED`, `ABNORMAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Processing => "PROCESSING",
            RefundState::Success => "SUCCESS",
            RefundState::Closed => "CLOSED",
            RefundState::Abnormal => "ABNORMAL",
        }
    }

    fn holds_amount(self) -> bool {
        self != RefundState::Closed
    }
}

/// A refund as the emulated upstream stores it.
#[derive(Clone, Debug, Serialize)]
pub struct RefundView {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// The refunded order, as the shop numbers it.
    pub out_trade_no: String,
    /// The upstream's refund id.
    pub refund_id: String,
    /// The refund in fen.
    pub amount: i64,
    /// The order's total in fen.
    pub total: i64,
    /// The reason the merchant gave.
    pub reason: Option<String>,
    /// The state.
    pub state: RefundState,
}

/// A refund request, parsed by its protocol.
#[derive(Clone, Debug)]
pub(crate) struct RefundAsk {
    /// The key of the refunded order in [`Orders::by_out_trade_no`](crate::state::Orders).
    pub(crate) order_key: String,
    pub(crate) out_refund_no: String,
    pub(crate) amount: i64,
    /// The order total the merchant believes in, when the protocol sends it.
    pub(crate) total: Option<i64>,
    pub(crate) reason: Option<String>,
    pub(crate) notify_url: Option<String>,
}

/// Builds the notification of a settled refund, in the protocol's format.
pub(crate) type Notifier =
    fn(&Arc<Shared>, &Order, &Refund) -> Result<Option<Notification>, SandboxError>;

/// A stored refund.
#[derive(Clone, Debug)]
pub(crate) struct Refund {
    pub(crate) order_key: String,
    pub(crate) shop_order_no: String,
    pub(crate) out_refund_no: String,
    pub(crate) refund_id: String,
    pub(crate) amount: i64,
    pub(crate) total: i64,
    pub(crate) reason: Option<String>,
    pub(crate) notify_url: Option<String>,
    pub(crate) state: RefundState,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) success_time: Option<OffsetDateTime>,
    pub(crate) user_received_account: Option<String>,
    notifier: Notifier,
}

impl Refund {
    pub(crate) fn view(&self) -> RefundView {
        RefundView {
            out_refund_no: self.out_refund_no.clone(),
            out_trade_no: self.shop_order_no.clone(),
            refund_id: self.refund_id.clone(),
            amount: self.amount,
            total: self.total,
            reason: self.reason.clone(),
            state: self.state,
        }
    }
}

/// Why a refund request was refused, for the protocol to phrase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such order.
    OrderNotFound,
    /// The order is not paid.
    NotPaid,
    /// The amount is zero, or the total is not the order's.
    InvalidAmount(&'static str),
    /// More than what is left to refund.
    ExceedsRefundable {
        /// What is left.
        refundable: i64,
    },
    /// The number was used for another refund.
    NumberReused,
    /// A refusal the test asked for.
    Injected,
}

/// What [`accept`] did.
#[derive(Clone, Debug)]
pub(crate) struct Accepted {
    /// The refund as stored.
    pub(crate) refund: Refund,
    /// The order as stored.
    pub(crate) order: Order,
    /// Whether the answer is to be lost (a server error sent although the refund stands).
    pub(crate) lose_answer: bool,
}

/// Accepts a refund (or finds the same one again) and schedules its settlement.
pub(crate) fn accept(
    shared: &Arc<Shared>,
    ask: RefundAsk,
    notifier: Notifier,
) -> Result<Accepted, Refusal> {
    let mut orders = lock(&shared.orders);
    let order = orders
        .by_out_trade_no
        .get(&ask.order_key)
        .cloned()
        .ok_or(Refusal::OrderNotFound)?;
    if let Some(existing) = orders.refunds.get(&ask.out_refund_no) {
        if existing.order_key != ask.order_key || existing.amount != ask.amount {
            return Err(Refusal::NumberReused);
        }
        return Ok(Accepted {
            refund: existing.clone(),
            order,
            lose_answer: take_lost_answer(shared),
        });
    }
    {
        let mut behaviour = lock(&shared.refund_behaviour);
        if behaviour.refuse_next > 0 {
            behaviour.refuse_next -= 1;
            return Err(Refusal::Injected);
        }
    }
    if order.state != TradeState::Success {
        return Err(Refusal::NotPaid);
    }
    if ask.amount <= 0 {
        return Err(Refusal::InvalidAmount(
            "the refund amount must be at least 1 fen",
        ));
    }
    if ask.total.is_some_and(|total| total != order.total) {
        return Err(Refusal::InvalidAmount(
            "the order total does not match the paid amount",
        ));
    }
    let held: i64 = orders
        .refunds
        .values()
        .filter(|r| r.order_key == ask.order_key && r.state.holds_amount())
        .map(|r| r.amount)
        .sum();
    if held + ask.amount > order.total {
        return Err(Refusal::ExceedsRefundable {
            refundable: order.total - held,
        });
    }
    let refund_id = format!(
        "50300{}",
        crypto::random_digits(24).map_err(|_| Refusal::Injected)?
    );
    let refund = Refund {
        order_key: ask.order_key,
        shop_order_no: order.shop_order_no().to_owned(),
        out_refund_no: ask.out_refund_no.clone(),
        refund_id,
        amount: ask.amount,
        total: order.total,
        reason: ask.reason,
        notify_url: ask.notify_url,
        state: RefundState::Processing,
        created_at: OffsetDateTime::now_utc(),
        success_time: None,
        user_received_account: None,
        notifier,
    };
    orders
        .refunds
        .insert(ask.out_refund_no.clone(), refund.clone());
    drop(orders);
    let (outcome, delay) = {
        let behaviour = lock(&shared.refund_behaviour);
        (behaviour.outcome, behaviour.delay)
    };
    let lose_answer = take_lost_answer(shared);
    if let Some(state) = settled_state(outcome) {
        let shared_for_task = Arc::clone(shared);
        let no = ask.out_refund_no;
        shared.spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(error) = settle(&shared_for_task, &no, state) {
                tracing::warn!(%error, "settling a sandbox refund failed");
            }
        });
    }
    Ok(Accepted {
        refund,
        order,
        lose_answer,
    })
}

/// Whether this answer is one of the ones to lose; repeats of an accepted refund count too, so
/// a client's retries of a lost answer can be lost as well.
fn take_lost_answer(shared: &Shared) -> bool {
    let mut behaviour = lock(&shared.refund_behaviour);
    let lose = behaviour.lose_answer_next > 0;
    if lose {
        behaviour.lose_answer_next -= 1;
    }
    lose
}

fn settled_state(outcome: RefundOutcome) -> Option<RefundState> {
    match outcome {
        RefundOutcome::Success => Some(RefundState::Success),
        RefundOutcome::Abnormal => Some(RefundState::Abnormal),
        RefundOutcome::Closed => Some(RefundState::Closed),
        RefundOutcome::Processing => None,
    }
}

/// Moves a `PROCESSING` or `ABNORMAL` refund to `state` and notifies the shop.
pub(crate) fn settle(
    shared: &Arc<Shared>,
    out_refund_no: &str,
    state: RefundState,
) -> Result<RefundView, SandboxError> {
    let mut orders = lock(&shared.orders);
    let Some(refund) = orders.refunds.get_mut(out_refund_no) else {
        return Err(SandboxError::Refund {
            code: "REFUND_NOT_FOUND".into(),
            message: format!("no refund {out_refund_no:?}"),
        });
    };
    let movable = matches!(
        (refund.state, state),
        (
            RefundState::Processing,
            RefundState::Success | RefundState::Abnormal | RefundState::Closed
        ) | (
            RefundState::Abnormal,
            RefundState::Success | RefundState::Closed
        )
    );
    if !movable {
        return Err(SandboxError::Refund {
            code: "REFUND_STATE".into(),
            message: format!(
                "refund {out_refund_no:?} is {} and cannot become {}",
                refund.state.as_str(),
                state.as_str()
            ),
        });
    }
    refund.state = state;
    if state == RefundState::Success {
        refund.success_time = Some(OffsetDateTime::now_utc());
        refund.user_received_account = Some("支付用户零钱".to_owned());
    }
    let refund = refund.clone();
    let order = orders.by_out_trade_no.get(&refund.order_key).cloned();
    drop(orders);
    if let Some(order) = order
        && refund.notify_url.is_some()
        && let Some(notification) = (refund.notifier)(shared, &order, &refund)?
    {
        crate::simulate::start_delivery(shared, notification);
    }
    Ok(refund.view())
}

/// The refund numbered `out_refund_no`, with its order.
pub(crate) fn find(shared: &Shared, out_refund_no: &str) -> Option<(Refund, Order)> {
    let orders = lock(&shared.orders);
    let refund = orders.refunds.get(out_refund_no)?.clone();
    let order = orders.by_out_trade_no.get(&refund.order_key)?.clone();
    Some((refund, order))
}

/// Every refund, oldest first.
pub(crate) fn all(shared: &Shared) -> Vec<RefundView> {
    let orders = lock(&shared.orders);
    let mut refunds: Vec<&Refund> = orders.refunds.values().collect();
    refunds.sort_by_key(|r| r.created_at);
    refunds.into_iter().map(Refund::view).collect()
}
