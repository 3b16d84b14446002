//! bench/results records: one JSON object per (backend, shape, mode).

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub device: String,
    pub backend: String,
    pub mode: String,
    pub dtype: String,
    #[serde(rename = "B")]
    pub b: usize,
    #[serde(rename = "H")]
    pub h: usize,
    #[serde(rename = "Hkv")]
    pub hkv: usize,
    #[serde(rename = "Sq")]
    pub sq: usize,
    #[serde(rename = "Sk")]
    pub sk: usize,
    #[serde(rename = "D")]
    pub d: usize,
    pub causal: bool,
    pub mask: String,
    pub layout: String,
    pub name: String,
    pub ms: f64,
    pub tflops: f64,
    pub max_abs_err: f64,
    pub rel_err: f64,
    pub naive_max_abs_err: f64,
    pub passed: bool,
    pub us_per_head: f64,
    pub pct_peak: f64,
    pub variant: String,
    /// Decode rows: K/V bytes read per second (GB/s), and a device-to-device copy's bytes moved
    /// (read + write) per second measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_gbps: Option<f64>,
}

pub fn write_json(path: &str, records: &[Record]) -> std::io::Result<()> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(path, serde_json::to_string_pretty(records).map_err(std::io::Error::other)?)
}
