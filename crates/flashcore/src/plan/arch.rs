//! GPU architectures we compile for.

use crate::error::{Error, Result};

/// Compute capability of a device, or the target of a compile-only run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch {
    pub major: u32,
    pub minor: u32,
}

impl Arch {
    pub const SM80: Arch = Arch { major: 8, minor: 0 };
    pub const SM90: Arch = Arch { major: 9, minor: 0 };

    pub fn new(major: u32, minor: u32) -> Result<Arch> {
        if major < 8 {
            return Err(Error::Unsupported(format!(
                "compute capability {major}.{minor}: flashcore needs sm_80 or newer (Ampere, Ada, Hopper, Blackwell)"
            )));
        }
        Ok(Arch { major, minor })
    }

    /// NVRTC's `-arch` value: the exact device, with the `a` suffix on 9.0 so Hopper-only
    /// instructions (wgmma, setmaxnreg) are allowed.
    pub fn nvrtc_arch(self) -> String {
        if self.major == 9 && self.minor == 0 {
            "sm_90a".to_string()
        } else {
            format!("sm_{}{}", self.major, self.minor)
        }
    }

    /// Largest dynamic shared memory one CTA may opt into, from the CUDA programming guide's
    /// per-arch table; used when planning without a device (a device's own attribute wins).
    pub fn max_smem_per_block(self) -> usize {
        match (self.major, self.minor) {
            (8, 0) | (8, 7) => 163 * 1024,
            (9, 0) | (10, _) => 227 * 1024,
            _ => 99 * 1024,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.nvrtc_arch())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch> {
        let digits = s.trim_start_matches("sm_").trim_start_matches("sm").trim_end_matches('a');
        let bad = || Error::arg("arch", format!("`{s}` is not an arch like sm_80 or sm_90a"));
        if digits.len() < 2 {
            return Err(bad());
        }
        let (maj, min) = digits.split_at(digits.len() - 1);
        Arch::new(maj.parse().map_err(|_| bad())?, min.parse().map_err(|_| bad())?)
    }
}
