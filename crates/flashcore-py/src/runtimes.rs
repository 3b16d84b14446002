//! One `flashcore::Runtime` per CUDA device, opened on first use and kept for the process.

use crate::error::to_py;
use flashcore::Runtime;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

static RUNTIMES: OnceLock<Mutex<HashMap<usize, Arc<Runtime>>>> = OnceLock::new();

/// The runtime of device `ordinal`, opening it (the primary context, the one torch uses) on first use.
pub fn get(py: Python<'_>, ordinal: usize) -> PyResult<Arc<Runtime>> {
    let map = RUNTIMES.get_or_init(|| Mutex::new(HashMap::new()));
    // A panic while the lock was held cannot leave the map half-updated (one insert), so a poisoned
    // lock is still usable.
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = map.get(&ordinal) {
        return Ok(rt.clone());
    }
    let rt = Arc::new(py.detach(|| Runtime::new(ordinal)).map_err(|e| to_py(py, e))?);
    map.insert(ordinal, rt.clone());
    Ok(rt)
}

/// Runtimes opened so far, by ordinal.
pub fn opened() -> Vec<(usize, Arc<Runtime>)> {
    let Some(map) = RUNTIMES.get() else { return Vec::new() };
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    let mut v: Vec<_> = map.iter().map(|(k, rt)| (*k, rt.clone())).collect();
    v.sort_by_key(|(k, _)| *k);
    v
}
