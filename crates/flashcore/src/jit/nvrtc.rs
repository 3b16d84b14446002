//! NVRTC: loading the library and compiling one source to a CUBIN.
//!
//! cudarc wraps NVRTC but returns PTX; we need the CUBIN (nvrtcGetCUBIN, which cudarc leaves at
//! the sys layer) and a guard that destroys the program on every path. cudarc also panics when the
//! library is missing, so we probe for it first and return an error.

use super::discover::{self, Candidate};
use crate::error::{Error, Result};
use cudarc::nvrtc::{result as nvrtc_result, sys as nvrtc_sys};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// What was loaded.
#[derive(Clone, Debug)]
pub struct NvrtcInfo {
    /// Full path of the libnvrtc that was preloaded; None when it came from the loader path.
    pub path: Option<PathBuf>,
    pub builtins: Option<PathBuf>,
    pub found_by: String,
    pub version: (i32, i32),
}

static LOADED: OnceLock<std::result::Result<NvrtcInfo, String>> = OnceLock::new();

#[cfg(unix)]
fn preload(c: &Candidate) -> std::result::Result<Option<PathBuf>, String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // NVRTC dlopens libnvrtc-builtins by name on its first compile; outside the loader path that
    // fails unless the builtins are already loaded, so load them first, globally, by full path.
    // Then load libnvrtc itself the same way: cudarc's later load-by-name finds it by soname.
    let builtins = discover::builtins_beside(&c.lib);
    if let Some(b) = &builtins {
        // SAFETY: loading NVIDIA's builtins library runs no initialisers with preconditions; the
        // handle is leaked on purpose so the library stays mapped for the life of the process.
        let lib = unsafe { Library::open(Some(b), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| e.to_string())?;
        std::mem::forget(lib);
    }
    // SAFETY: as above, for libnvrtc; leaked so cudarc's handle and ours refer to one live mapping.
    let lib = unsafe { Library::open(Some(&c.lib), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| e.to_string())?;
    std::mem::forget(lib);
    Ok(builtins)
}

#[cfg(not(unix))]
fn preload(_c: &Candidate) -> std::result::Result<Option<PathBuf>, String> {
    Err("preloading by path is only implemented on Unix".into())
}

fn load() -> std::result::Result<NvrtcInfo, String> {
    let mut tried = Vec::new();
    let mut chosen: Option<(Candidate, Option<PathBuf>)> = None;
    for c in discover::candidates() {
        match preload(&c) {
            Ok(b) => {
                chosen = Some((c, b));
                break;
            }
            Err(e) => tried.push(format!("{} ({}): {e}", c.lib.display(), c.found_by)),
        }
    }
    // SAFETY: only dlopens candidate names; no NVRTC call is made.
    if !unsafe { nvrtc_sys::is_culib_present() } {
        let mut why = String::from("libnvrtc could not be loaded");
        if !tried.is_empty() {
            why.push_str(&format!(" (tried: {})", tried.join("; ")));
        }
        return Err(format!("{why}; {}", discover::INSTALL_HINT));
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above); both out-pointers are valid.
    unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| format!("nvrtcVersion failed: {e:?}"))?;
    let (path, builtins, found_by) = match chosen {
        Some((c, b)) => (Some(c.lib), b, c.found_by),
        None => (None, None, "loader path".to_string()),
    };
    Ok(NvrtcInfo { path, builtins, found_by, version: (major, minor) })
}

/// Finds and loads NVRTC once per process.
pub fn ensure_loaded() -> Result<&'static NvrtcInfo> {
    LOADED
        .get_or_init(load)
        .as_ref()
        .map_err(|hint| Error::LibraryNotFound { what: "NVRTC (libnvrtc)", hint: hint.clone() })
}

/// Destroys the program on every exit path.
struct Program(nvrtc_sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: self.0 came from a successful create_program and is destroyed exactly once here.
        let _ = unsafe { nvrtc_result::destroy_program(self.0) };
    }
}

fn program_log(p: &Program) -> String {
    // SAFETY: p.0 is a live program.
    match unsafe { nvrtc_result::get_program_log(p.0) } {
        Ok(raw) => {
            let bytes: Vec<u8> = raw.iter().map(|c| *c as u8).take_while(|b| *b != 0).collect();
            String::from_utf8_lossy(&bytes).trim().to_string()
        }
        Err(e) => format!("(no log: {e:?})"),
    }
}

/// `FLASHCORE_DUMP_PTX=DIR` (kernel work): each freshly compiled variant's PTX also goes to
/// DIR/<variant>.ptx, to see what ptxas was given (e.g. where a wgmma wait sits before ptxas
/// schedules it). Best effort: a failure to write is ignored.
fn dump_ptx(p: &Program, name: &str) {
    let Some(dir) = std::env::var_os("FLASHCORE_DUMP_PTX") else { return };
    // SAFETY: p.0 is a live, successfully compiled program.
    if let Ok(raw) = unsafe { nvrtc_result::get_ptx(p.0) } {
        let bytes: Vec<u8> = raw.iter().map(|c| *c as u8).take_while(|b| *b != 0).collect();
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.ptx")), bytes);
    }
}

/// Compiles `source` with `options` and returns the CUBIN and the compiler log.
pub fn compile_cubin(name: &str, source: &str, options: &[String]) -> Result<(Vec<u8>, String)> {
    ensure_loaded()?;
    let src = CString::new(source).map_err(|_| Error::Nvrtc("source contains a NUL byte".into()))?;
    let cname = CString::new(name).map_err(|_| Error::Nvrtc("name contains a NUL byte".into()))?;
    let prog = Program(
        nvrtc_result::create_program(&src, Some(cname.as_c_str())).map_err(|e| Error::Nvrtc(format!("{e:?}")))?,
    );
    // SAFETY: prog.0 is a live program; options are plain strings.
    let compiled = unsafe { nvrtc_result::compile_program(prog.0, options) };
    let log = program_log(&prog);
    if compiled.is_err() {
        return Err(Error::Compile { variant: name.to_string(), options: options.to_vec(), log });
    }
    dump_ptx(&prog, name);
    let mut size = 0usize;
    // SAFETY: prog.0 compiled successfully; size is a valid out-pointer.
    unsafe { nvrtc_sys::nvrtcGetCUBINSize(prog.0, &mut size) }
        .result()
        .map_err(|e| Error::Nvrtc(format!("nvrtcGetCUBINSize: {e:?}")))?;
    if size == 0 {
        return Err(Error::Nvrtc(format!("{name}: NVRTC produced no CUBIN (is -arch a real sm_XX target?)")));
    }
    let mut cubin = vec![0u8; size];
    // SAFETY: cubin has exactly the size NVRTC reported.
    unsafe { nvrtc_sys::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr().cast()) }
        .result()
        .map_err(|e| Error::Nvrtc(format!("nvrtcGetCUBIN: {e:?}")))?;
    Ok((cubin, log))
}
