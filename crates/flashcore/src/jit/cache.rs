//! On-disk CUBIN cache. One file per (source, options, NVRTC version, arch) key.
//!
//! File = magic, payload length, SHA-256 of the payload, payload. A read that finds a short,
//! truncated or corrupt file treats it as a miss (the caller recompiles and overwrites it). Writes
//! go to a temporary file in the same folder and are renamed into place, so a reader never sees a
//! partial file and two processes warming the same variant both succeed (the last rename wins,
//! and both wrote identical bytes).

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"FCCUBIN1";
const HEADER: usize = 8 + 8 + 32;

#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

/// One cached kernel file.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub bytes: u64,
}

impl DiskCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DiskCache { dir: dir.into() }
    }

    /// FLASHCORE_CACHE_DIR, else $XDG_CACHE_HOME/flashcore, else ~/.cache/flashcore.
    pub fn from_env() -> Self {
        if let Some(d) = std::env::var_os("FLASHCORE_CACHE_DIR") {
            return DiskCache::new(d);
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        DiskCache::new(base.join("flashcore"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.cubin"))
    }

    /// The payload stored under `name`, or None when absent or damaged.
    pub fn load(&self, name: &str) -> Option<Vec<u8>> {
        let raw = std::fs::read(self.path(name)).ok()?;
        decode(&raw)
    }

    pub fn store(&self, name: &str, payload: &[u8]) -> Result<()> {
        let io = |e: std::io::Error| Error::Cache(format!("{}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        tmp.write_all(&encode(payload)).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(self.path(name)).map_err(|e| io(e.error))?;
        Ok(())
    }

    pub fn entries(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let stem = name.strip_suffix(".cubin")?.to_string();
                Some(Entry { name: stem, bytes: e.metadata().ok()?.len() })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

fn decode(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < HEADER || &raw[..8] != MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(raw[8..16].try_into().ok()?) as usize;
    let payload = &raw[HEADER..];
    if payload.len() != len || Sha256::digest(payload).as_slice() != &raw[16..48] {
        return None;
    }
    Some(payload.to_vec())
}

/// Hex SHA-256 of the parts, each length-prefixed so ("ab","c") and ("a","bc") differ.
pub fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path());
        assert!(c.load("x").is_none());
        c.store("x", b"hello cubin").unwrap();
        assert_eq!(c.load("x").unwrap(), b"hello cubin");
        // Truncated file.
        let p = c.path("x");
        let raw = std::fs::read(&p).unwrap();
        std::fs::write(&p, &raw[..raw.len() - 3]).unwrap();
        assert!(c.load("x").is_none());
        // Same length, flipped byte.
        let mut bad = raw.clone();
        *bad.last_mut().unwrap() ^= 0xff;
        std::fs::write(&p, &bad).unwrap();
        assert!(c.load("x").is_none());
        // Rewriting repairs it.
        c.store("x", b"hello cubin").unwrap();
        assert_eq!(c.load("x").unwrap(), b"hello cubin");
        assert_eq!(c.entries().len(), 1);
    }

    #[test]
    fn concurrent_writers_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::thread::scope(|s| {
            for _ in 0..8 {
                let c = DiskCache::new(dir.path());
                let p = payload.clone();
                s.spawn(move || {
                    for _ in 0..10 {
                        c.store("same", &p).unwrap();
                        // A reader racing the writers sees either nothing or the whole payload.
                        if let Some(got) = c.load("same") {
                            assert_eq!(got, p);
                        }
                    }
                });
            }
        });
        assert_eq!(DiskCache::new(dir.path()).load("same").unwrap(), payload);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn key_is_length_prefixed() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]).len(), 64);
    }
}
