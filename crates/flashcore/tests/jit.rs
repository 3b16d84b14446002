//! NVRTC compile + disk cache, end to end. Needs libnvrtc (not a GPU): CI installs the pip package
//! nvidia-cuda-nvrtc outside the loader path and sets FLASHCORE_NVRTC_PATH and
//! FLASHCORE_REQUIRE_NVRTC=1, so a first compile also proves the builtins preload works.

use flashcore::jit::{cache::DiskCache, ensure_loaded, nvrtc::compile_cubin, Jit};
use flashcore::plan::{Arch, Variant};
use flashcore::{DType, Error, Mask};

fn nvrtc_or_skip() -> bool {
    match ensure_loaded() {
        Ok(_) => true,
        Err(e) => {
            assert!(std::env::var_os("FLASHCORE_REQUIRE_NVRTC").is_none(), "NVRTC required but not loadable: {e}");
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn variant(arch: Arch) -> Variant {
    Variant::forward(arch, 128, DType::Bf16, Mask::CausalTopLeft, 4096, arch.max_smem_per_block()).unwrap()
}

#[test]
fn compiles_caches_and_rebuilds_a_corrupt_entry() {
    if !nvrtc_or_skip() {
        return;
    }
    let info = ensure_loaded().unwrap();
    if let (Some(path), Some(dir)) = (&info.path, std::env::var_os("LD_LIBRARY_PATH")) {
        let lib_dir = path.parent().unwrap().to_string_lossy().to_string();
        assert!(
            !dir.to_string_lossy().split(':').any(|d| d == lib_dir),
            "libnvrtc's folder is on LD_LIBRARY_PATH, so this test would not exercise the builtins preload"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let jit = Jit::new(DiskCache::new(tmp.path()));
    for arch in [Arch::SM90, Arch::SM80] {
        let v = variant(arch);
        let cold = jit.compile(&v).unwrap();
        assert!(!cold.from_disk_cache);
        assert_eq!(&cold.cubin[..4], b"\x7fELF", "{v}: NVRTC returns an ELF CUBIN");
        let warm = jit.compile(&v).unwrap();
        assert!(warm.from_disk_cache, "{v}: second compile comes from the disk cache");
        assert_eq!(warm.cubin, cold.cubin);
        // Truncate the entry: it is detected and rebuilt.
        let file = tmp.path().join(format!("{}.cubin", cold.cache_name));
        let raw = std::fs::read(&file).unwrap();
        std::fs::write(&file, &raw[..raw.len() / 2]).unwrap();
        let rebuilt = jit.compile(&v).unwrap();
        assert!(!rebuilt.from_disk_cache);
        assert_eq!(&rebuilt.cubin[..4], b"\x7fELF");
        assert!(jit.compile(&v).unwrap().from_disk_cache);
    }
    // Different arch or define -> different cache key.
    let names: std::collections::HashSet<String> =
        [Arch::SM80, Arch::SM90].iter().map(|a| jit.compile(&variant(*a)).unwrap().cache_name).collect();
    assert_eq!(names.len(), 2);
}

#[test]
fn concurrent_warmers_of_one_variant_all_succeed() {
    if !nvrtc_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let v = Variant::forward(Arch::SM80, 64, DType::F16, Mask::None, 512, 163 * 1024).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let jit = Jit::new(DiskCache::new(tmp.path()));
                s.spawn(move || jit.compile(&v))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert_eq!(&r.as_ref().unwrap().cubin[..4], b"\x7fELF");
    }
    assert!(Jit::new(DiskCache::new(tmp.path())).compile(&v).unwrap().from_disk_cache);
}

#[test]
fn compile_errors_keep_the_log_and_options() {
    if !nvrtc_or_skip() {
        return;
    }
    let opts = vec!["-arch=sm_80".to_string()];
    match compile_cubin("broken", "extern \"C\" __global__ void k() { undeclared_thing(); }", &opts) {
        Err(Error::Compile { variant, options, log }) => {
            assert_eq!(variant, "broken");
            assert_eq!(options, opts);
            assert!(log.contains("undeclared_thing"), "{log}");
        }
        other => panic!("expected a compile error, got {:?}", other.map(|c| c.0.len())),
    }
}
