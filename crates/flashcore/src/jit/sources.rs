//! Kernel sources embedded in the binary, and the flattening of `#include`s into one NVRTC input.
//!
//! NVRTC is given a single self-contained source: includes are inlined here (each file once, like
//! `#pragma once`) with `#line` markers, so compile errors still point at the original file and line.

use crate::error::{Error, Result};
use std::collections::HashSet;

macro_rules! kernel_files {
    ($($p:literal),* $(,)?) => {
        &[$(($p, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../kernels/", $p)))),*]
    };
}

/// Every file under kernels/, by path relative to it.
pub static FILES: &[(&str, &str)] = kernel_files!(
    "common/types.cuh",
    "common/params.cuh",
    "common/config.cuh",
    "common/tile.cuh",
    "common/sections.cuh",
    "common/ptx/cp_async.cuh",
    "common/ptx/cvt.cuh",
    "common/ptx/ldmatrix.cuh",
    "common/ptx/mma.cuh",
    "attn/mask.cuh",
    "attn/softmax.cuh",
    "attn/softcap.cuh",
    "sm80/mainloop.cuh",
    "sm80/epilogue.cuh",
    "sm80/fwd.cu",
    "common/ptx/wgmma.cuh",
    "common/ptx/wgmma_ops.cuh",
    "common/ptx/tma.cuh",
    "sm90/config.cuh",
    "sm90/smem.cuh",
    "sm90/scheduler.cuh",
    "sm90/producer.cuh",
    "sm90/consumer.cuh",
    "sm90/transpose.cuh",
    "sm90/epilogue.cuh",
    "sm90/fwd.cu",
    "common/ptx/atomic.cuh",
    "common/ptx/griddep.cuh",
    "bwd/config.cuh",
    "bwd/prep.cu",
    "bwd/post.cu",
    "sm80/bwd_mainloop.cuh",
    "sm80/bwd.cu",
    "sm90/bwd_config.cuh",
    "sm90/bwd_smem.cuh",
    "sm90/bwd_producer.cuh",
    "sm90/bwd_convert.cuh",
    "sm90/bwd_zero.cuh",
    "sm90/bwd_consumer.cuh",
    "sm90/bwd.cu",
    "attn/combine.cu",
    "sm90/fp8_vt.cu",
);

pub fn lookup(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
}

fn join(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn parse_include(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start().strip_prefix("include")?.trim();
    rest.strip_prefix('"')?.split('"').next()
}

/// The entry file with every quoted include inlined once.
pub fn flatten(entry: &str) -> Result<String> {
    fn visit(path: &str, out: &mut String, seen: &mut HashSet<String>) -> Result<()> {
        if !seen.insert(path.to_string()) {
            return Ok(());
        }
        let src = lookup(path).ok_or_else(|| Error::Nvrtc(format!("kernel source `{path}` is not embedded")))?;
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        out.push_str(&format!("#line 1 \"{path}\"\n"));
        for (i, line) in src.lines().enumerate() {
            if line.trim() == "#pragma once" {
                out.push('\n');
            } else if let Some(inc) = parse_include(line) {
                visit(&join(dir, inc), out, seen)?;
                out.push_str(&format!("#line {} \"{path}\"\n", i + 2));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        Ok(())
    }
    let mut out = String::new();
    visit(entry, &mut out, &mut HashSet::new())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_inlines_each_header_once() {
        let s = flatten("sm80/fwd.cu").unwrap();
        assert_eq!(s.matches("#line 1 \"common/types.cuh\"").count(), 1);
        assert!(s.contains("fc_fwd_sm80"));
        assert!(!s.contains("#include"));
        assert!(!s.contains("#pragma once"));
    }

    #[test]
    fn join_resolves_parent_dirs() {
        assert_eq!(join("sm80", "../common/tile.cuh"), "common/tile.cuh");
        assert_eq!(join("common/ptx", "../types.cuh"), "common/types.cuh");
    }
}
