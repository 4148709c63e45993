//! The layer.

use tower_layer::Layer;
use wxpay_core::engine::Engine;

use crate::service::WxPay;

/// A [`Layer`] that mounts the engine's routes in front of a service: see [`WxPay`].
///
/// Cheap to clone (the engine is shared).
#[derive(Clone)]
pub struct WxPayLayer {
    engine: Engine,
}

impl std::fmt::Debug for WxPayLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPayLayer")
            .field("prefix", &self.engine.prefix())
            .finish_non_exhaustive()
    }
}

impl WxPayLayer {
    /// A layer answering `engine`'s routes under its prefix.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl<S> Layer<S> for WxPayLayer {
    type Service = WxPay<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WxPay::new(inner, self.engine.clone())
    }
}
