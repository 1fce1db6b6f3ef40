//! [`Store`] over Envoy's shared data.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::core::store::{Cas, Store, StoreError, Write};

/// Envoy's shared data for this plugin's `vm_id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvoyStore;

impl Store for EnvoyStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, StoreError> {
        // The SDK maps NotFound to (None, None); a present key always has a
        // token, and an empty value comes back as no data.
        match hostcalls::get_shared_data(key) {
            Ok((_, None)) => Ok(None),
            Ok((bytes, Some(cas))) => Ok(Some((bytes.unwrap_or_default(), cas))),
            Err(status) => Err(StoreError(format!("get {key:?}: {status:?}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Cas) -> Result<Write, StoreError> {
        match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
            Ok(()) => Ok(Write::Stored),
            Err(Status::CasMismatch) => Ok(Write::CasMismatch),
            Err(status) => Err(StoreError(format!("set {key:?}: {status:?}"))),
        }
    }
}
