//! Where libnvrtc lives. Searched in order: FLASHCORE_NVRTC_PATH, CUDA_HOME / CUDA_PATH, the pip
//! package `nvidia-cuda-nvrtc` of the active Python environment, and finally the loader path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A libnvrtc found on disk, and which rule found it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub lib: PathBuf,
    pub found_by: String,
}

/// The file names NVRTC 13 and 12 ship under.
const NAMES: &[&str] = &["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

fn in_dir(dir: &Path, found_by: &str) -> Option<Candidate> {
    NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file()).map(|lib| Candidate { lib, found_by: found_by.to_string() })
}

/// The folders under a site-packages directory where the pip wheels put libnvrtc.
fn pip_dirs(site: &Path) -> [PathBuf; 2] {
    [site.join("nvidia/cu13/lib"), site.join("nvidia/cuda_nvrtc/lib")]
}

fn site_packages_of_prefix(prefix: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for lib in ["lib", "lib64"] {
        if let Ok(rd) = std::fs::read_dir(prefix.join(lib)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("python3") {
                    out.push(e.path().join("site-packages"));
                }
            }
        }
    }
    out
}

/// site-packages folders of the Python environment in use: VIRTUAL_ENV / CONDA_PREFIX, then what
/// `python3` reports (its purelib and platlib, plus user site).
fn python_site_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = std::env::var_os(var) {
            out.extend(site_packages_of_prefix(Path::new(&p)));
        }
    }
    let py = std::env::var("FLASHCORE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import site,sysconfig;p=sysconfig.get_paths();print('\\n'.join([p['purelib'],p['platlib']]+site.getsitepackages()+[site.getusersitepackages()]))";
    if let Ok(o) = Command::new(py).args(["-c", script]).output() {
        if o.status.success() {
            out.extend(String::from_utf8_lossy(&o.stdout).lines().map(PathBuf::from));
        }
    }
    out
}

/// Candidates in priority order; the first that loads wins. The loader path is not listed: it is
/// what cudarc falls back to by itself.
pub fn candidates() -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("FLASHCORE_NVRTC_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            out.push(Candidate { lib: p, found_by: "FLASHCORE_NVRTC_PATH".into() });
        } else if let Some(c) = in_dir(&p, "FLASHCORE_NVRTC_PATH") {
            out.push(c);
        }
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = std::env::var_os(var) {
            let root = PathBuf::from(root);
            for sub in ["lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"] {
                if let Some(c) = in_dir(&root.join(sub), var) {
                    out.push(c);
                    break;
                }
            }
        }
    }
    for site in python_site_dirs() {
        for dir in pip_dirs(&site) {
            if let Some(c) = in_dir(&dir, "pip package nvidia-cuda-nvrtc") {
                if !out.iter().any(|o: &Candidate| o.lib == c.lib) {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// The builtins library NVRTC dlopens by name during its first compile; it sits beside libnvrtc.
pub fn builtins_beside(lib: &Path) -> Option<PathBuf> {
    let dir = lib.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            n.starts_with("libnvrtc-builtins.so") && !n.contains(".alt.")
        })
        .collect();
    // Prefer the most specific name (libnvrtc-builtins.so.13.0 over libnvrtc-builtins.so).
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.into_iter().next()
}

pub const INSTALL_HINT: &str =
    "install it with `pip install nvidia-cuda-nvrtc` (CUDA 13: `pip install nvidia-cuda-nvrtc==13.0.88`), \
or point FLASHCORE_NVRTC_PATH at libnvrtc.so, or set CUDA_HOME to a CUDA toolkit";
