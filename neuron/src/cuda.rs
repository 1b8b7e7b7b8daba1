//! Makes libtorch's CUDA backend visible.
//!
//! Rust links with `--as-needed`, and nothing in the binary references a symbol of
//! `libtorch_cuda.so`, so the linker drops it and libtorch reports no CUDA device even on a GPU
//! machine. Loading the library by hand before the first tensor operation registers the CUDA
//! backend. On a machine without CUDA the load fails and everything runs on the CPU.

use std::ffi::CStr;

/// Tries to load `libtorch_cuda.so` globally; returns whether it loaded.
pub fn load() -> bool {
    const LIB: &CStr = c"libtorch_cuda.so";
    // SAFETY: dlopen with a valid NUL-terminated name has no preconditions; a null handle means
    // the library (or one of its dependencies) is missing, which is the CPU-only case.
    let handle = unsafe { libc::dlopen(LIB.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    !handle.is_null()
}
