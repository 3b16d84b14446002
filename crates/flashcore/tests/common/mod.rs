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

pub fn rand_bits(n: usize, dt: DType, rng: &mut StdRng) -> Vec<u16> {
    (0..n).map(|_| dt.encode(rng.random_range(-3.0f32..3.0))).collect()
}

pub fn values(b: &[u16], dt: DType) -> Vec<f64> {
    b.iter().map(|x| dt.decode(*x)).collect()
}

/// A generator with a fresh seed, printed so a failure can be replayed.
pub fn seeded() -> StdRng {
    let s: u64 = rand::rng().random();
    eprintln!("seed {s}");
    StdRng::seed_from_u64(s)
}
