//! The checkout policy: the app decides the price and may refuse an order, server-side.

use std::fmt;

use async_trait::async_trait;
use http::{HeaderMap, StatusCode};

use crate::fields::{Amount, Attach, Description, FieldError, OpenId, OutTradeNo};

/// A precreate request as the client sent it, validated field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutRequest {
    /// The payer's openid.
    pub openid: OpenId,
    /// The amount the client asked for, in fen (`amount` or seed-001's `pay_amount`).
    pub amount: Option<u64>,
    /// The description the client sent (`description` or `title`).
    pub description: Option<String>,
    /// The attach the client sent (`attach` or `extra`).
    pub attach: Option<String>,
    /// The order number the client chose (`out_trade_no` or `biz_order_id`).
    pub out_trade_no: Option<OutTradeNo>,
    /// The whole JSON body, for fields of the app's own (a product id, a coupon).
    pub body: serde_json::Value,
}

/// What the policy decided the order is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The amount to charge.
    pub amount: Amount,
    /// The description shown to the payer.
    pub description: Description,
    /// Merchant data for the notification.
    pub attach: Option<Attach>,
    /// The order number: `None` has the engine generate one. Return the client's
    /// [`CheckoutRequest::out_trade_no`] to honour its choice (a retry with the same number is
    /// then the same order), a number of the app's own, or refuse the request instead.
    pub out_trade_no: Option<OutTradeNo>,
}

impl Checkout {
    /// An order of `amount` described as `description`, without attach, whose number the
    /// engine generates.
    pub fn new(amount: Amount, description: Description) -> Self {
        Self {
            amount,
            description,
            attach: None,
            out_trade_no: None,
        }
    }

    /// With merchant data for the notification.
    #[must_use]
    pub fn with_attach(mut self, attach: Attach) -> Self {
        self.attach = Some(attach);
        self
    }

    /// With this order number (e.g. the client's, [`CheckoutRequest::out_trade_no`]).
    #[must_use]
    pub fn with_out_trade_no(mut self, out_trade_no: Option<OutTradeNo>) -> Self {
        self.out_trade_no = out_trade_no;
        self
    }
}

/// A refusal by the policy, answered as `{"code", "message"}` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRejection {
    /// The HTTP status (4xx).
    pub status: StatusCode,
    /// The error code.
    pub code: String,
    /// The explanation.
    pub message: String,
    /// The request field at fault, when one is (answered as `field`).
    pub field: Option<&'static str>,
}

impl CheckoutRejection {
    /// A rejection.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    /// A 400 for an invalid field.
    pub fn invalid(error: &FieldError) -> Self {
        Self {
            field: Some(error.field),
            ..Self::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", error.to_string())
        }
    }
}

/// Prices or authorises an order from the request and its headers (a session cookie, a token).
///
/// Implement it so a client cannot choose its own price: look the product up, check the user,
/// and return what to charge.
#[async_trait]
pub trait CheckoutPolicy: Send + Sync + fmt::Debug {
    /// Decides the order, or refuses it.
    async fn checkout(
        &self,
        request: &CheckoutRequest,
        headers: &HeaderMap,
    ) -> Result<Checkout, CheckoutRejection>;
}

/// The default policy: the client's amount, accepted within `min..=max` fen (seed 000's
/// "custom amount" endpoint), and the client's order number when it sends one (seed 001's
/// `biz_order_id`). Put a real policy in front of anything that sells goods.
#[derive(Debug, Clone)]
pub struct AmountRange {
    min: Amount,
    max: Amount,
    default_description: Description,
}

impl AmountRange {
    /// Accepts client amounts from `min` to `max` fen; orders without a description get
    /// `default_description`.
    pub fn new(min: Amount, max: Amount, default_description: Description) -> Self {
        Self {
            min,
            max,
            default_description,
        }
    }
}

impl Default for AmountRange {
    /// 1 fen to 10 000 yuan, described as "Payment".
    fn default() -> Self {
        Self {
            min: Amount::from_known_valid(1),
            max: Amount::from_known_valid(1_000_000),
            default_description: Description::from_known_valid("Payment"),
        }
    }
}

#[async_trait]
impl CheckoutPolicy for AmountRange {
    async fn checkout(
        &self,
        request: &CheckoutRequest,
        _headers: &HeaderMap,
    ) -> Result<Checkout, CheckoutRejection> {
        let fen = request.amount.ok_or_else(|| {
            CheckoutRejection::new(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                "invalid amount: required, in fen",
            )
        })?;
        let amount = Amount::from_fen(fen).map_err(|e| CheckoutRejection::invalid(&e))?;
        if amount < self.min || amount > self.max {
            return Err(CheckoutRejection::new(
                StatusCode::BAD_REQUEST,
                "AMOUNT_OUT_OF_RANGE",
                format!(
                    "amount must be between {} and {} fen",
                    self.min.fen(),
                    self.max.fen()
                ),
            ));
        }
        let description = match &request.description {
            Some(text) => {
                Description::try_from(text.as_str()).map_err(|e| CheckoutRejection::invalid(&e))?
            }
            None => self.default_description.clone(),
        };
        let attach = request
            .attach
            .as_deref()
            .map(Attach::try_from)
            .transpose()
            .map_err(|e| CheckoutRejection::invalid(&e))?;
        Ok(Checkout {
            amount,
            description,
            attach,
            out_trade_no: request.out_trade_no.clone(),
        })
    }
}
