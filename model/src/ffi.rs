//! The C entry points of `csrc/` (ATen functions tch does not expose) and their error protocol:
//! each returns null on success or a malloc'ed message, so no C++ exception unwinds into Rust.

use std::ffi::{c_char, c_void, CStr};

use tch::{TchError, Tensor};

extern "C" {
    pub fn covenant_fused_adamw(
        param: *const c_void,
        grad: *const c_void,
        exp_avg: *const c_void,
        exp_avg_sq: *const c_void,
        step: *const c_void,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        grad_scale: *const c_void,
    ) -> *mut c_char;
    pub fn covenant_clear_grad(leaf: *const c_void) -> *mut c_char;
    pub fn covenant_swiglu_mlp(
        x: *const c_void,
        w13: *const c_void,
        w2: *const c_void,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn covenant_free_error(message: *mut c_char);
}

/// The `torch::Tensor*` behind `t`, as the C entry points take it.
pub fn handle(t: &Tensor) -> *const c_void {
    t.as_ptr() as *const c_void
}

/// Turns an entry point's return value into a `Result`, freeing the message.
pub fn check(error: *mut c_char) -> Result<(), TchError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string from strdup, freed exactly once here.
    let message = unsafe {
        let m = CStr::from_ptr(error).to_string_lossy().into_owned();
        covenant_free_error(error);
        m
    };
    Err(TchError::Torch(message))
}
