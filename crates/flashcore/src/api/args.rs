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
    /// `x` rounded to this dtype, as the bit pattern a device buffer holds (e4m3 in the low byte).
    pub fn encode(self, x: f32) -> u16 {
        match self {
            DType::F16 => half::f16::from_f32(x).to_bits(),
            DType::Bf16 => half::bf16::from_f32(x).to_bits(),
            DType::E4m3 => crate::fp8::f32_to_e4m3(x) as u16,
        }
    }
    /// The value of a bit pattern of this dtype (the inverse of [`DType::encode`]).
    pub fn decode(self, bits: u16) -> f64 {
        match self {
            DType::F16 => half::f16::from_bits(bits).to_f64(),
            DType::Bf16 => half::bf16::from_bits(bits).to_f64(),
            DType::E4m3 => crate::fp8::e4m3_to_f32(bits as u8) as f64,
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

/// Sliding-window (local) attention: how far left and right of its diagonal a query sees. `None`
/// leaves that side unbounded. The diagonal of query i is key i + d with d = 0 for
/// [`Mask::CausalTopLeft`] and d = Sk - Sq otherwise (FlashAttention's convention: the last query
/// is aligned with the last key); query i sees key j iff i + d - left <= j <= i + d + right. A
/// causal mask is the window's right edge at 0 (a causal call with `right > 0` is rejected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Window {
    pub left: Option<usize>,
    pub right: Option<usize>,
}

impl Window {
    pub fn is_none(&self) -> bool {
        self.left.is_none() && self.right.is_none()
    }
    /// From FlashAttention's (left, right) pair, where -1 means unbounded.
    pub fn from_signed(left: i64, right: i64) -> Window {
        let side = |x: i64| usize::try_from(x).ok();
        Window { left: side(left), right: side(right) }
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
    /// Sliding window around each query's diagonal (default: none).
    pub window: Window,
    /// Logit softcap: scores s·scale become cap·tanh(s·scale / cap) before the softmax (Gemma 2).
    pub softcap: Option<f32>,
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
    /// The forward's sliding window (default: none).
    pub window: Window,
    /// The forward's logit softcap (default: none): dS also carries the cap's derivative 1 − tanh².
    pub softcap: Option<f32>,
}

impl BwdOptions {
    /// The forward options these gradients belong to.
    pub fn forward(&self) -> AttnOptions {
        AttnOptions { mask: self.mask, scale: self.scale, return_lse: true, window: self.window, softcap: self.softcap }
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
    pub window: Window,
    pub softcap: Option<f32>,
}

/// Which keys one query row sees: the mask, the window and the sequence lengths they refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Visibility {
    pub mask: Mask,
    pub window: Window,
}

/// Offsets beyond this are as good as unbounded (every index is below MAX_SEQLEN) and keep the
/// arithmetic far from overflow.
const OFFSET_CLAMP: i64 = 1 << 40;

impl Visibility {
    /// The diagonal's offset d: query i's diagonal key is i + d.
    pub fn diagonal(&self, seqlen_q: usize, seqlen_k: usize) -> i64 {
        match self.mask {
            Mask::CausalTopLeft => 0,
            _ => seqlen_k as i64 - seqlen_q as i64,
        }
    }
    /// Upper bound: key j is visible only if j <= i + offset. None = no upper bound.
    pub fn upper_offset(&self, seqlen_q: usize, seqlen_k: usize) -> Option<i64> {
        let d = self.diagonal(seqlen_q, seqlen_k);
        if self.mask.is_causal() {
            Some(d)
        } else {
            self.window.right.map(|r| d + (r as i64).min(OFFSET_CLAMP))
        }
    }
    /// Lower bound: key j is visible only if j >= i + offset. None = no lower bound.
    pub fn lower_offset(&self, seqlen_q: usize, seqlen_k: usize) -> Option<i64> {
        let d = self.diagonal(seqlen_q, seqlen_k);
        self.window.left.map(|l| d - (l as i64).min(OFFSET_CLAMP))
    }
    /// Is key `j` visible to query `i` (j < seqlen_k assumed)?
    pub fn visible(&self, i: usize, j: usize, seqlen_q: usize, seqlen_k: usize) -> bool {
        let (i, j) = (i as i64, j as i64);
        self.upper_offset(seqlen_q, seqlen_k).is_none_or(|u| j <= i + u)
            && self.lower_offset(seqlen_q, seqlen_k).is_none_or(|l| j >= i + l)
    }
    /// Visible keys of query i: an interval, so its size has a closed form.
    pub fn visible_count(&self, i: usize, seqlen_q: usize, seqlen_k: usize) -> usize {
        let i = i as i64;
        let hi =
            self.upper_offset(seqlen_q, seqlen_k).map_or(seqlen_k as i64 - 1, |u| (i + u).min(seqlen_k as i64 - 1));
        let lo = self.lower_offset(seqlen_q, seqlen_k).map_or(0, |l| (i + l).max(0));
        (hi - lo + 1).max(0) as usize
    }
}

impl From<Mask> for Visibility {
    fn from(mask: Mask) -> Visibility {
        Visibility { mask, window: Window::default() }
    }
}

impl Problem {
    pub fn visibility(&self) -> Visibility {
        Visibility { mask: self.mask, window: self.window }
    }
    /// Is key `j` visible to query `i`? (mask and window; the reference's rule)
    pub fn visible(&self, i: usize, j: usize) -> bool {
        j < self.seqlen_k && self.visibility().visible(i, j, self.seqlen_q, self.seqlen_k)
    }

    pub fn is_empty(&self) -> bool {
        self.batch == 0 || self.heads == 0 || self.seqlen_q == 0
    }

    /// Matmul FLOPs as every peer counts them: 4·B·H·Sq·Sk·D, halved when causal. With a window,
    /// 4·B·H·D times the exact number of visible (query, key) pairs, so TF/s stays honest.
    pub fn flops(&self) -> f64 {
        if !self.window.is_none() {
            let vis = self.visibility();
            let pairs: f64 =
                (0..self.seqlen_q).map(|i| vis.visible_count(i, self.seqlen_q, self.seqlen_k) as f64).sum();
            return 4.0 * (self.batch * self.heads * self.head_dim) as f64 * pairs;
        }
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

/// Packed variable-length batches (no padding): sequence b's query rows are
/// `cu_seqlens_q[b] .. cu_seqlens_q[b + 1]` of q and out, described as [1, total_q, H, D]; likewise
/// its keys in k and v ([1, total_k, Hkv, D]) when `cu_seqlens_k` is set. Both arrays are int32
/// [batch + 1] in device memory (0 = that side is not packed: q [batch, Sq, ..], or k dense or paged).
/// `max_seqlen_q` / `max_seqlen_k` bound every sequence's length (the host cannot read the arrays).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Varlen {
    pub cu_seqlens_q: u64,
    pub cu_seqlens_k: u64,
    pub batch: usize,
    pub max_seqlen_q: usize,
    pub max_seqlen_k: usize,
}

/// Paged K/V: k and v are page pools [num_pages, page_size, Hkv, D] (each page's token rows
/// contiguous) and `block_table` (int32 [batch, stride] in device memory) lists sequence b's pages
/// in order. `seqlen_k` is the longest sequence's key count; each table row holds at least
/// ceil(seqlen_k / page_size) entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paged {
    pub block_table: u64,
    pub stride: usize,
    pub page_size: usize,
    pub seqlen_k: usize,
}

/// Is `p` a page size the paged path serves? Powers of two from 16 to 256.
pub fn supported_page_size(p: usize) -> bool {
    p.is_power_of_two() && (16..=256).contains(&p)
}

/// The inference paths of one forward call: varlen batches, KV-cache lengths, paged K/V, split-KV.
///
/// The device arrays' contents (cu_seqlens, seqused_k, block_table) are trusted to be consistent
/// (ascending offsets, lengths within the max, valid pages): the host cannot read them without a
/// sync. The kernel clamps every value it reads to the tensors' bounds, so garbage gives a wrong
/// answer but never an out-of-bounds access.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvSpec {
    pub varlen: Option<Varlen>,
    /// int32 [batch] device array: keys in use per sequence (KV-cache lengths), 0 = all keys.
    /// With it (or with varlen) a causal mask or window is aligned bottom-right per sequence.
    pub seqused_k: u64,
    pub paged: Option<Paged>,
    /// Split-KV: key chunks per tile merged by the combine kernel; None = the planner's choice.
    pub num_splits: Option<usize>,
    /// Attention sinks: fp32 [heads] device array, one logit per query head (in the units of the
    /// scaled scores and the LSE) that joins every row's softmax denominator with a zero value, as
    /// gpt-oss uses them: out = Σ_j e^{s_j} v_j / (e^{sink} + Σ_j e^{s_j}), and the LSE includes
    /// e^{sink}. 0 = none. Not softcapped.
    pub sinks: u64,
}

impl KvSpec {
    /// Sequence lengths vary per batch entry (the kernel reads them from device arrays).
    pub fn per_sequence(&self) -> bool {
        self.seqused_k != 0 || self.varlen.is_some_and(|v| v.cu_seqlens_q != 0 || v.cu_seqlens_k != 0)
    }
}

/// Where the forward writes its LSE (fp32, natural log): element (b, h, i) at
/// `ptr[b * stride_b + h * stride_h + i]`, or for packed (varlen) queries
/// `ptr[h * stride_h + cu_seqlens_q[b] + i]` ([H, total_q] with stride_h = total_q). ptr 0 = none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LseOut {
    pub ptr: u64,
    pub stride_b: i64,
    pub stride_h: i64,
}
