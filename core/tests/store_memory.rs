//! The conformance suite on [`MemoryStore`].
#![cfg(feature = "testing")]

use std::sync::Arc;

use wxpay_core::store::testing::OpenStore;
use wxpay_core::store::{MemoryStore, OrderStore};

/// Every call opens the same store: clones share their data.
fn opener() -> Option<impl OpenStore> {
    let store = MemoryStore::new();
    Some(move || {
        let store = store.clone();
        async move { Arc::new(store) as Arc<dyn OrderStore> }
    })
}

wxpay_core::store_conformance_tests!(opener());

#[tokio::test]
async fn run_all_runs_every_case() {
    let open = opener().expect("memory store");
    wxpay_core::store::testing::run_all(&open).await;
    assert_eq!(wxpay_core::store::testing::CASES.len(), 18);
}
