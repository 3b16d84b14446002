//! What the GPU test files share (`mod common;` in each): the process's runtime, 16-bit / e4m3
//! bit patterns and their values, random inputs and a logged seed.
// Each test file uses its own subset.
#![allow(dead_code)]

use flashcore::{DType, Runtime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;

pub fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(0).expect("these tests need a CUDA GPU"))
}

pub fn bits(x: f32, dt: DType) -> u16 {
    match dt {
        DType::F16 => half::f16::from_f32(x).to_bits(),
        DType::Bf16 => half::bf16::from_f32(x).to_bits(),
        DType::E4m3 => flashcore::fp8::f32_to_e4m3(x) as u16,
    }
}

pub fn val(b: u16, dt: DType) -> f64 {
    match dt {
        DType::F16 => half::f16::from_bits(b).to_f64(),
        DType::Bf16 => half::bf16::from_bits(b).to_f64(),
        DType::E4m3 => flashcore::fp8::e4m3_to_f32(b as u8) as f64,
    }
}

pub fn rand_bits(n: usize, dt: DType, rng: &mut StdRng) -> Vec<u16> {
    (0..n).map(|_| bits(rng.random_range(-3.0f32..3.0), dt)).collect()
}

pub fn values(b: &[u16], dt: DType) -> Vec<f64> {
    b.iter().map(|x| val(*x, dt)).collect()
}

/// A generator with a fresh seed, printed so a failure can be replayed.
pub fn seeded() -> StdRng {
    let s: u64 = rand::rng().random();
    eprintln!("seed {s}");
    StdRng::seed_from_u64(s)
}
