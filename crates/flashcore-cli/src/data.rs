//! Random inputs (fresh every run, never zeros) and NaN poison patterns (`DType::encode` and
//! `DType::decode` convert values).

use flashcore::DType;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// NaN bit patterns used to poison outputs before a launch, so unwritten elements show.
pub fn nan_bits(dt: DType) -> u16 {
    match dt {
        DType::F16 => 0x7e00,
        DType::Bf16 => 0x7fc0,
        DType::E4m3 => 0x7f,
    }
}

/// `n` standard-normal values rounded to `dt`, generated in parallel chunks from `seed`.
pub fn randn_bits(n: usize, dt: DType, seed: u64) -> Vec<u16> {
    const CHUNK: usize = 1 << 20;
    let mut out = vec![0u16; n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, chunk)| {
        let mut rng = SmallRng::seed_from_u64(seed ^ (ci as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for pair in chunk.chunks_mut(2) {
            // Box-Muller.
            let u1: f32 = rng.random::<f32>().max(1e-12);
            let u2: f32 = rng.random::<f32>();
            let r = (-2.0 * u1.ln()).sqrt();
            let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
            pair[0] = dt.encode(r * c);
            if pair.len() > 1 {
                pair[1] = dt.encode(r * s);
            }
        }
    });
    out
}

pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (t as u64) ^ ((std::process::id() as u64) << 32)
}
