//! The demo shop's products and its checkout policy: the server prices every order.

use async_trait::async_trait;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use wxpay_core::engine::{Checkout, CheckoutPolicy, CheckoutRejection, CheckoutRequest};
use wxpay_core::fields::{Amount, Attach, Description};

/// A product for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Stable id the page sends as `product_id`.
    pub id: &'static str,
    /// Name, also the payment's description.
    pub name: &'static str,
    /// One line about it.
    pub blurb: &'static str,
    /// Price in fen.
    pub price_fen: u64,
}

/// The products of the demo shop.
#[derive(Debug, Clone)]
pub struct Catalog {
    products: Vec<Product>,
}

impl Catalog {
    /// Three demo products.
    pub fn demo() -> Self {
        Self {
            products: vec![
                Product {
                    id: "green-tea",
                    name: "Green tea (250 g)",
                    blurb: "Spring-picked Longjing.",
                    price_fen: 3800,
                },
                Product {
                    id: "mooncake-box",
                    name: "Mooncake gift box",
                    blurb: "Six lotus-seed mooncakes.",
                    price_fen: 12_800,
                },
                Product {
                    id: "postcard",
                    name: "Postcard",
                    blurb: "West Lake at dawn.",
                    price_fen: 1,
                },
            ],
        }
    }

    /// All products.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The product with `id`.
    pub fn get(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }
}

/// The shop's [`CheckoutPolicy`]: the page sends `{openid, product_id}`; the amount and the
/// description come from the [`Catalog`], whatever amount the page may have sent. The product
/// id travels in `attach`, so the paid event says what was bought.
#[derive(Debug, Clone)]
pub struct CatalogPolicy {
    catalog: Catalog,
}

impl CatalogPolicy {
    /// A policy selling `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }
}

#[async_trait]
impl CheckoutPolicy for CatalogPolicy {
    async fn checkout(
        &self,
        request: &CheckoutRequest,
        _headers: &HeaderMap,
    ) -> Result<Checkout, CheckoutRejection> {
        let Some(id) = request.body.get("product_id").and_then(|v| v.as_str()) else {
            return Err(CheckoutRejection::new(
                StatusCode::BAD_REQUEST,
                "PRODUCT_REQUIRED",
                "send the product_id of the product to buy",
            ));
        };
        let product = self.catalog.get(id).ok_or_else(|| {
            CheckoutRejection::new(
                StatusCode::BAD_REQUEST,
                "UNKNOWN_PRODUCT",
                "no product with this product_id",
            )
        })?;
        // A page that shows one price and sends another is out of date or tampered with:
        // refuse rather than charge a price the payer did not see.
        if let Some(sent) = request.amount
            && sent != product.price_fen
        {
            return Err(CheckoutRejection::new(
                StatusCode::BAD_REQUEST,
                "AMOUNT_MISMATCH",
                format!(
                    "amount {sent} fen is not the price of {} ({} fen)",
                    product.id, product.price_fen
                ),
            ));
        }
        let amount =
            Amount::from_fen(product.price_fen).map_err(|e| CheckoutRejection::invalid(&e))?;
        let description =
            Description::try_from(product.name).map_err(|e| CheckoutRejection::invalid(&e))?;
        let attach = Attach::try_from(product.id).map_err(|e| CheckoutRejection::invalid(&e))?;
        // The client may pick the number (a retry of the same purchase is the same order).
        Ok(Checkout::new(amount, description)
            .with_attach(attach)
            .with_out_trade_no(request.out_trade_no.clone()))
    }
}

#[cfg(test)]
mod tests {
    use wxpay_core::fields::OpenId;

    use super::*;

    fn request(body: serde_json::Value, amount: Option<u64>) -> CheckoutRequest {
        CheckoutRequest {
            openid: OpenId::try_from("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").unwrap(),
            amount,
            description: Some("cheap!".into()),
            attach: None,
            out_trade_no: None,
            body,
        }
    }

    #[tokio::test]
    async fn the_price_comes_from_the_catalog_not_the_page() {
        let policy = CatalogPolicy::new(Catalog::demo());
        for amount in [None, Some(3800)] {
            let checkout = policy
                .checkout(
                    &request(serde_json::json!({"product_id": "green-tea"}), amount),
                    &HeaderMap::new(),
                )
                .await
                .unwrap();
            assert_eq!(checkout.amount.fen(), 3800);
            assert_eq!(checkout.description.as_str(), "Green tea (250 g)");
            assert_eq!(checkout.attach.unwrap().as_str(), "green-tea");
        }
    }

    #[tokio::test]
    async fn another_amount_than_the_price_is_refused() {
        let policy = CatalogPolicy::new(Catalog::demo());
        let e = policy
            .checkout(
                &request(
                    serde_json::json!({"product_id": "green-tea", "amount": 1}),
                    Some(1),
                ),
                &HeaderMap::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::BAD_REQUEST, "AMOUNT_MISMATCH")
        );
        assert!(e.message.contains("3800"), "{}", e.message);
    }

    #[tokio::test]
    async fn unknown_or_missing_products_are_refused() {
        let policy = CatalogPolicy::new(Catalog::demo());
        let e = policy
            .checkout(
                &request(serde_json::json!({"product_id": "gold"}), None),
                &HeaderMap::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::BAD_REQUEST, "UNKNOWN_PRODUCT")
        );
        let e = policy
            .checkout(
                &request(serde_json::json!({"amount": 5}), Some(5)),
                &HeaderMap::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "PRODUCT_REQUIRED");
    }
}
