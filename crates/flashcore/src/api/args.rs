//! What the caller asks for: tensor descriptions, mask, scale.

use serde::{Deserialize, Serialize};

/// Element type of q, k, v and o.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    #[serde(rename = "fp16")]
    F16,
    #[serde(rename = "bf16")]
    Bf16,
    /// FP8 E4M3 (torch.float8_e4m3fn): inputs of the FP8 forward only ([`crate::fp8`]), whose
    /// output is bf16 or fp16.
    #[serde(rename = "e4m3")]
    E4m3,
}

impl DType {
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F16 | DType::Bf16 => 2,
            DType::E4m3 => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "fp16",
            DType::Bf16 => "bf16",
            DType::E4m3 => "e4m3",
        }
    }
}

impl std::str::FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp16" | "f16" | "float16" | "half" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::Bf16),
            "e4m3" | "fp8" | "float8_e4m3fn" => Ok(DType::E4m3),
            _ => Err(format!("unknown dtype `{s}` (expected fp16, bf16 or e4m3)")),
        }
    }
}

/// Which keys a query may attend to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Mask {
    /// Every key.
    #[default]
    #[serde(rename = "none")]
    None,
    /// Query i sees keys j <= i (PyTorch SDPA's `is_causal`, aligned to the top-left corner).
    #[serde(rename = "causal")]
    CausalTopLeft,
    /// Query i sees keys j <= i + (Sk - Sq) (FlashAttention's convention, aligned to the
    /// bottom-right corner): the last query sees every key, as in chunked prefill. When Sq > Sk the
    /// first Sq - Sk queries see no key; their output is 0 and their LSE is -inf.
    #[serde(rename = "causal_bottom_right")]
    CausalBottomRight,
}

impl Mask {
    pub fn is_causal(self) -> bool {
        !matches!(self, Mask::None)
    }
    /// Key j is visible to query i iff j <= i + offset (causal masks only).
    pub fn causal_offset(self, seqlen_q: usize, seqlen_k: usize) -> i64 {
        match self {
            Mask::None | Mask::CausalTopLeft => 0,
            Mask::CausalBottomRight => seqlen_k as i64 - seqlen_q as i64,
        }
    }
    /// Is key `j` visible to query `i`?
    pub fn visible(self, i: usize, j: usize, seqlen_q: usize, seqlen_k: usize) -> bool {
        match self {
            Mask::None => true,
            _ => (j as i64) <= i as i64 + self.causal_offset(seqlen_q, seqlen_k),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mask::None => "none",
            Mask::CausalTopLeft => "causal",
            Mask::CausalBottomRight => "causal_br",
        }
    }
}

impl std::str::FromStr for Mask {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" | "false" => Ok(Mask::None),
            "causal" | "top_left" | "true" => Ok(Mask::CausalTopLeft),
            "causal_br" | "causal_bottom_right" | "bottom_right" => Ok(Mask::CausalBottomRight),
            _ => Err(format!("unknown mask `{s}` (expected none, causal or causal_bottom_right)")),
        }
    }
}

/// Shape and element strides of a 4-d tensor in the logical order [batch, seq, heads, head_dim].
///
/// Strides are in elements and may describe any layout: BSHD (`contiguous_bshd`), BHSD
/// (`contiguous_bhsd`), or a view into a larger buffer, as long as the head dim has stride 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorDesc {
    pub shape: [usize; 4],
    pub strides: [i64; 4],
    pub dtype: DType,
}

impl TensorDesc {
    pub fn new(shape: [usize; 4], strides: [i64; 4], dtype: DType) -> Self {
        TensorDesc { shape, strides, dtype }
    }

    /// Row-major [B, S, H, D].
    pub fn contiguous_bshd(b: usize, s: usize, h: usize, d: usize, dtype: DType) -> Self {
        let (s_, h_, d_) = (s as i64, h as i64, d as i64);
        TensorDesc::new([b, s, h, d], [s_ * h_ * d_, h_ * d_, d_, 1], dtype)
    }

    /// Row-major [B, H, S, D] memory, described in the logical [B, S, H, D] order.
    pub fn contiguous_bhsd(b: usize, s: usize, h: usize, d: usize, dtype: DType) -> Self {
        let (s_, h_, d_) = (s as i64, h as i64, d as i64);
        TensorDesc::new([b, s, h, d], [h_ * s_ * d_, d_, s_ * d_, 1], dtype)
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Same strides' ordering for another tensor of this shape (the output takes q's layout).
    pub fn like(&self) -> TensorDesc {
        let [b, s, h, d] = self.shape;
        if self.strides[2] < self.strides[1] || s == 1 {
            TensorDesc::contiguous_bshd(b, s, h, d, self.dtype)
        } else {
            TensorDesc::contiguous_bhsd(b, s, h, d, self.dtype)
        }
    }

    /// One past the largest element offset the tensor touches (0 for an empty tensor). None on overflow.
    pub fn span(&self) -> Option<u64> {
        if self.numel() == 0 {
            return Some(0);
        }
        let mut max = 0u64;
        for (n, s) in self.shape.iter().zip(self.strides.iter()) {
            let step = u64::try_from(*s).ok()?;
            max = max.checked_add(step.checked_mul(*n as u64 - 1)?)?;
        }
        max.checked_add(1)
    }
}

/// Options of one attention call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttnOptions {
    pub mask: Mask,
    /// Softmax scale; `None` means 1/sqrt(head_dim).
    pub scale: Option<f32>,
    /// Also produce the log-sum-exp of each row, fp32 [B, H, Sq], natural log.
    pub return_lse: bool,
}

/// Options of one backward call. `mask` and `scale` must be those of the forward that produced the
/// output and LSE being differentiated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BwdOptions {
    pub mask: Mask,
    /// Softmax scale; `None` means 1/sqrt(head_dim).
    pub scale: Option<f32>,
    /// Add the dQ contributions of the key blocks in a fixed order, so the gradients are bitwise
    /// identical across runs (CTAs wait for their turn: slower).
    pub deterministic: bool,
}

impl BwdOptions {
    /// The forward options these gradients belong to.
    pub fn forward(&self) -> AttnOptions {
        AttnOptions { mask: self.mask, scale: self.scale, return_lse: true }
    }
}

/// The validated problem: every dimension of one attention call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Problem {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seqlen_q: usize,
    pub seqlen_k: usize,
    pub head_dim: usize,
    pub dtype: DType,
    pub mask: Mask,
    pub scale: f32,
}

impl Problem {
    pub fn is_empty(&self) -> bool {
        self.batch == 0 || self.heads == 0 || self.seqlen_q == 0
    }

    /// Matmul FLOPs as every peer counts them: 4·B·H·Sq·Sk·D, halved when causal.
    pub fn flops(&self) -> f64 {
        let f = 4.0 * (self.batch * self.heads * self.head_dim) as f64 * self.seqlen_q as f64 * self.seqlen_k as f64;
        if self.mask.is_causal() {
            f / 2.0
        } else {
            f
        }
    }

    /// Backward matmul FLOPs as FlashAttention's benchmarks count them: 2.5 x the forward's (five
    /// GEMMs of the forward's size, QKᵀ recomputed, against the forward's two), halved when causal.
    pub fn backward_flops(&self) -> f64 {
        2.5 * self.flops()
    }
}
