//! The codec's CUDA kernels (`cuda/codec_kernels.cu`), compiled at run time with NVRTC and
//! launched through the CUDA driver API:
//! - [`chunk_topk`]: top-k of every chunk, selected and ordered in one kernel. ATen's `topk`
//!   followed by a `sort` of the kept indices is a third of encoding a 1B-parameter update
//!   (16 + 3.6 ms on an H200 for 262,144 chunks of 4,096).
//! - [`ef_update`]: the error-feedback update and the copy of `|e|` into the chunk buffer in one
//!   pass over the parameter (ATen needs three: `mul_`, `add_`, `abs`).
//! - [`chunk_mean`]: the aggregation's per-position mean over peers, accumulated per chunk in
//!   shared memory and written once, where ATen scatters with global atomics into a zeroed
//!   buffer (most of aggregating 20 peers' 1B-parameter updates).
//!
//! Both libraries are loaded when first needed (`libnvrtc` ships with PyTorch's CUDA wheels,
//! `libcuda` with the driver), so builds and CPU machines need neither; when either is missing
//! the functions report that they did nothing and the caller uses ATen's operators.
//!
//! The kernels run on the legacy default stream, the one ATen uses unless a caller selects
//! another, so they are ordered with the tensor operations around them.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

use libloading::Library;
use tch::{Device, Kind, TchError, Tensor};

/// Chunks up to this many elements (the top-k kernel's 256 threads × 16 values each).
pub const MAX_CHUNK: i64 = 4096;

const SOURCE: &str = include_str!("cuda/codec_kernels.cu");
const TOPK_THREADS: c_uint = 256;
const EF_THREADS: c_uint = 256;
const MEAN_THREADS: c_uint = 256;

/// The `k` largest values of each row of `magnitude` `(rows, n)` (f32, non-negative, finite) as
/// int64 column indices `(rows, k)`, increasing within each row; among equal values the lower
/// column is kept. `None` when the tensor is not on CUDA, its shape is outside the kernel's
/// range, or NVRTC or the driver cannot be loaded.
pub fn chunk_topk(magnitude: &Tensor, k: i64) -> Result<Option<Tensor>, TchError> {
    let Device::Cuda(device) = magnitude.device() else { return Ok(None) };
    let size = magnitude.size();
    let [rows, n] = size[..] else { return Ok(None) };
    if magnitude.kind() != Kind::Float || n > MAX_CHUNK || k < 1 || k > n || rows < 1 || rows > i32::MAX as i64 {
        return Ok(None);
    }
    let input = magnitude.f_contiguous()?;
    let out = Tensor::f_empty([rows, k], (Kind::Int64, magnitude.device()))?;
    let Some(kernels) = Kernels::for_device(device) else { return Ok(None) };
    let (mut input_ptr, mut out_ptr) = (input.data_ptr(), out.data_ptr());
    let (mut n, mut k) = (n as c_int, k as c_int);
    // SAFETY: chunk_topk takes (const float*, long long*, int, int), matching the arguments;
    // both buffers are live device allocations of rows·n and rows·k elements.
    unsafe {
        kernels.launch(
            kernels.chunk_topk,
            rows as c_uint,
            TOPK_THREADS,
            0,
            &mut [arg(&mut input_ptr), arg(&mut out_ptr), arg(&mut n), arg(&mut k)],
        )?;
    }
    Ok(Some(out))
}

/// Where a parameter's chunks go in a chunk buffer: the parameter seen as
/// `(chunk_rows·h, chunk_cols·w)`, and the buffer row of its first chunk.
#[derive(Clone, Copy, Debug)]
pub struct ChunkLayout {
    pub cols: i64,
    pub h: i64,
    pub w: i64,
    pub first_chunk: i64,
}

/// `e ← decay·e + d` (rounded as `e.mul_(decay).add_(d)`), and `|e|` written into `magnitude`
/// `(rows, h·w)` at the rows `layout` gives. `e` and `d` must be contiguous f32 of one size on
/// the same CUDA device as `magnitude`. Returns `false`, having done nothing, when the kernel is
/// unavailable or the tensors are not on CUDA.
pub fn ef_update(
    e: &mut Tensor,
    d: &Tensor,
    magnitude: &Tensor,
    layout: ChunkLayout,
    decay: f32,
) -> Result<bool, TchError> {
    let Device::Cuda(device) = e.device() else { return Ok(false) };
    let numel = e.numel() as i64;
    let fits = e.kind() == Kind::Float
        && d.kind() == Kind::Float
        && magnitude.kind() == Kind::Float
        && e.is_contiguous()
        && d.is_contiguous()
        && magnitude.is_contiguous()
        && d.numel() as i64 == numel
        && d.device() == e.device()
        && magnitude.device() == e.device()
        && layout.cols > 0
        && layout.w > 0
        && layout.h > 0
        && layout.first_chunk >= 0
        && layout.cols <= u32::MAX as i64
        && layout.h * layout.w <= u32::MAX as i64
        && numel % layout.cols == 0
        && layout.cols % layout.w == 0
        && (numel / layout.cols) % layout.h == 0
        && (layout.first_chunk + numel / (layout.h * layout.w)) * layout.h * layout.w <= magnitude.numel() as i64;
    if !fits || numel == 0 {
        return Ok(false);
    }
    let Some(kernels) = Kernels::for_device(device) else { return Ok(false) };
    let (mut e_ptr, mut d_ptr, mut m_ptr) = (e.data_ptr(), d.data_ptr(), magnitude.data_ptr());
    let (mut rows, mut first, mut decay) = (numel / layout.cols, layout.first_chunk, decay);
    let (mut cols, mut h, mut w) = (layout.cols as c_uint, layout.h as c_uint, layout.w as c_uint);
    // A block per row, up to 65,536 blocks (each then strides over several rows).
    let blocks = rows.min(65_536) as c_uint;
    // SAFETY: ef_update takes (float*, const float*, float*, long long, unsigned, unsigned,
    // unsigned, long long, float), matching the arguments; the checks above keep every index in
    // bounds.
    unsafe {
        kernels.launch(
            kernels.ef_update,
            blocks,
            EF_THREADS,
            0,
            &mut [
                arg(&mut e_ptr),
                arg(&mut d_ptr),
                arg(&mut m_ptr),
                arg(&mut rows),
                arg(&mut cols),
                arg(&mut h),
                arg(&mut w),
                arg(&mut first),
                arg(&mut decay),
            ],
        )?;
    }
    Ok(true)
}

/// The mean over peers of the values each chunk position received (0 where none), written to a
/// new dense f32 buffer of `elems` elements: `local` int16 and `values` f32 are `(peers, rows, k)`
/// (contiguous); chunk row `i` starts at `row_out[i]` in the output, in a parameter whose rows
/// are `row_cols[i]` long (both int64, `(rows,)`), and has `h`×`w` positions. Local indices
/// outside the chunk are ignored. `None` when the kernel is unavailable or the tensors are not
/// on CUDA.
#[allow(clippy::too_many_arguments)]
pub fn chunk_mean(
    local: &Tensor,
    values: &Tensor,
    row_out: &Tensor,
    row_cols: &Tensor,
    elems: i64,
    h: i64,
    w: i64,
) -> Result<Option<Tensor>, TchError> {
    let Device::Cuda(device) = values.device() else { return Ok(None) };
    let size = values.size();
    let [peers, rows, k] = size[..] else { return Ok(None) };
    let on_device = |t: &Tensor| t.device() == values.device() && t.is_contiguous();
    let fits = local.kind() == Kind::Int16
        && values.kind() == Kind::Float
        && row_out.kind() == Kind::Int64
        && row_cols.kind() == Kind::Int64
        && local.size() == size
        && row_out.size() == [rows]
        && row_cols.size() == [rows]
        && [local, values, row_out, row_cols].into_iter().all(on_device)
        && h > 0
        && w > 0
        && h * w <= MAX_CHUNK
        && peers > 0
        && peers * k <= i32::MAX as i64;
    if !fits {
        return Ok(None);
    }
    let dense = Tensor::f_empty([elems], (Kind::Float, values.device()))?;
    if rows == 0 {
        return Ok(Some(dense));
    }
    let Some(kernels) = Kernels::for_device(device) else { return Ok(None) };
    let (mut local_ptr, mut values_ptr, mut out_ptr, mut cols_ptr, mut dense_ptr) =
        (local.data_ptr(), values.data_ptr(), row_out.data_ptr(), row_cols.data_ptr(), dense.data_ptr());
    let (mut peers, mut rows_arg, mut k, mut h, mut w) = (peers as c_int, rows, k as c_int, h as c_int, w as c_int);
    let shared = (2 * h * w) as c_uint * std::mem::size_of::<f32>() as c_uint;
    // SAFETY: chunk_mean takes (const short*, const float*, const long long*, const long long*,
    // float*, int, long long, int, int, int), matching the arguments. The caller's offsets keep
    // every chunk inside `dense` (they are the plan's own, not peers'); peers' indices are
    // checked against the chunk in the kernel.
    unsafe {
        kernels.launch(
            kernels.chunk_mean,
            rows.min(65_536) as c_uint,
            MEAN_THREADS,
            shared,
            &mut [
                arg(&mut local_ptr),
                arg(&mut values_ptr),
                arg(&mut out_ptr),
                arg(&mut cols_ptr),
                arg(&mut dense_ptr),
                arg(&mut peers),
                arg(&mut rows_arg),
                arg(&mut k),
                arg(&mut h),
                arg(&mut w),
            ],
        )?;
    }
    Ok(Some(dense))
}

/// A kernel argument as `cuLaunchKernel` takes it: a pointer to the value.
fn arg<T>(value: &mut T) -> *mut c_void {
    (value as *mut T).cast()
}

type CuResult = c_int;
type NvrtcResult = c_int;

/// The driver and NVRTC entry points the launcher uses.
struct Api {
    _cuda: Library,
    _nvrtc: Library,
    error_name: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
    device_get: unsafe extern "C" fn(*mut c_int, c_int) -> CuResult,
    primary_ctx_retain: unsafe extern "C" fn(*mut *mut c_void, c_int) -> CuResult,
    ctx_get_current: unsafe extern "C" fn(*mut *mut c_void) -> CuResult,
    ctx_set_current: unsafe extern "C" fn(*mut c_void) -> CuResult,
    device_attribute: unsafe extern "C" fn(*mut c_int, c_int, c_int) -> CuResult,
    module_load_data: unsafe extern "C" fn(*mut *mut c_void, *const c_void) -> CuResult,
    module_get_function: unsafe extern "C" fn(*mut *mut c_void, *mut c_void, *const c_char) -> CuResult,
    #[allow(clippy::type_complexity)]
    launch: unsafe extern "C" fn(
        *mut c_void,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        *mut c_void,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> CuResult,
    create_program: unsafe extern "C" fn(
        *mut *mut c_void,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> NvrtcResult,
    compile_program: unsafe extern "C" fn(*mut c_void, c_int, *const *const c_char) -> NvrtcResult,
    program_log_size: unsafe extern "C" fn(*mut c_void, *mut usize) -> NvrtcResult,
    program_log: unsafe extern "C" fn(*mut c_void, *mut c_char) -> NvrtcResult,
    ptx_size: unsafe extern "C" fn(*mut c_void, *mut usize) -> NvrtcResult,
    ptx: unsafe extern "C" fn(*mut c_void, *mut c_char) -> NvrtcResult,
    destroy_program: unsafe extern "C" fn(*mut *mut c_void) -> NvrtcResult,
}

impl Api {
    fn load() -> Result<Self, String> {
        // SAFETY: loading the CUDA driver and NVRTC runs their initialisers, which have no
        // preconditions; each symbol is given its C signature from cuda.h / nvrtc.h.
        unsafe {
            let cuda = Library::new("libcuda.so.1").map_err(|e| format!("CUDA driver: {e}"))?;
            let nvrtc = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]
                .iter()
                .find_map(|name| Library::new(name).ok())
                .ok_or("NVRTC (libnvrtc.so) not found")?;
            macro_rules! sym {
                ($lib:expr, $name:literal) => {
                    *$lib.get($name).map_err(|e| format!("{}: {e}", String::from_utf8_lossy($name)))?
                };
            }
            Ok(Self {
                error_name: sym!(cuda, b"cuGetErrorName\0"),
                device_get: sym!(cuda, b"cuDeviceGet\0"),
                primary_ctx_retain: sym!(cuda, b"cuDevicePrimaryCtxRetain\0"),
                ctx_get_current: sym!(cuda, b"cuCtxGetCurrent\0"),
                ctx_set_current: sym!(cuda, b"cuCtxSetCurrent\0"),
                device_attribute: sym!(cuda, b"cuDeviceGetAttribute\0"),
                module_load_data: sym!(cuda, b"cuModuleLoadData\0"),
                module_get_function: sym!(cuda, b"cuModuleGetFunction\0"),
                launch: sym!(cuda, b"cuLaunchKernel\0"),
                create_program: sym!(nvrtc, b"nvrtcCreateProgram\0"),
                compile_program: sym!(nvrtc, b"nvrtcCompileProgram\0"),
                program_log_size: sym!(nvrtc, b"nvrtcGetProgramLogSize\0"),
                program_log: sym!(nvrtc, b"nvrtcGetProgramLog\0"),
                ptx_size: sym!(nvrtc, b"nvrtcGetPTXSize\0"),
                ptx: sym!(nvrtc, b"nvrtcGetPTX\0"),
                destroy_program: sym!(nvrtc, b"nvrtcDestroyProgram\0"),
                _cuda: cuda,
                _nvrtc: nvrtc,
            })
        }
    }

    fn check(&self, result: CuResult, call: &str) -> Result<(), TchError> {
        if result == 0 {
            return Ok(());
        }
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: cuGetErrorName stores a pointer to a static string (or leaves it null).
        let name = unsafe {
            (self.error_name)(result, &mut name);
            if name.is_null() {
                format!("error {result}")
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            }
        };
        Err(TchError::Torch(format!("{call}: {name}")))
    }

    /// PTX of the kernel for compute capability `major.minor`.
    fn compile(&self, major: c_int, minor: c_int) -> Result<Vec<u8>, String> {
        let source = CString::new(SOURCE).map_err(|e| e.to_string())?;
        let arch = CString::new(format!("--gpu-architecture=compute_{major}{minor}")).map_err(|e| e.to_string())?;
        let options = [arch.as_ptr(), c"-std=c++17".as_ptr()];
        let mut program: *mut c_void = std::ptr::null_mut();
        // SAFETY: NVRTC's C API with valid NUL-terminated strings; the program is destroyed on
        // every path after creation.
        unsafe {
            let created = (self.create_program)(
                &mut program,
                source.as_ptr(),
                c"codec_kernels.cu".as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            );
            if created != 0 {
                return Err(format!("nvrtcCreateProgram: error {created}"));
            }
            let compiled = (self.compile_program)(program, options.len() as c_int, options.as_ptr());
            let result = if compiled != 0 {
                let mut size = 0usize;
                (self.program_log_size)(program, &mut size);
                let mut log = vec![0u8; size.max(1)];
                (self.program_log)(program, log.as_mut_ptr().cast());
                Err(format!("nvrtcCompileProgram: error {compiled}: {}", String::from_utf8_lossy(&log)))
            } else {
                let mut size = 0usize;
                (self.ptx_size)(program, &mut size);
                let mut ptx = vec![0u8; size];
                (self.ptx)(program, ptx.as_mut_ptr().cast());
                Ok(ptx)
            };
            (self.destroy_program)(&mut program);
            result
        }
    }
}

/// The compiled kernels in one device's primary context.
struct Kernels {
    api: &'static Api,
    /// The device's primary context (the one ATen's runtime calls use).
    context: *mut c_void,
    chunk_topk: *mut c_void,
    ef_update: *mut c_void,
    chunk_mean: *mut c_void,
}

// SAFETY: CUfunctions are handles valid in their context from any thread; launches only read them.
unsafe impl Send for Kernels {}
unsafe impl Sync for Kernels {}

impl Kernels {
    /// The kernels for CUDA device `device`, compiled and loaded on first use; `None` (after one
    /// warning) if NVRTC or the driver is unavailable or the kernels do not build.
    fn for_device(device: usize) -> Option<&'static Kernels> {
        static API: OnceLock<Result<Api, String>> = OnceLock::new();
        static KERNELS: OnceLock<Mutex<HashMap<usize, Option<&'static Kernels>>>> = OnceLock::new();
        let mut kernels = KERNELS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kernels.get(&device) {
            return *k;
        }
        let built = API.get_or_init(Api::load).as_ref().map_err(String::clone).and_then(|api| Self::build(api, device));
        let entry = match built {
            Ok(k) => Some(&*Box::leak(Box::new(k))),
            Err(e) => {
                eprintln!("warning: the codec's CUDA kernels are unavailable on cuda:{device}, using ATen ops: {e}");
                None
            }
        };
        kernels.insert(device, entry);
        entry
    }

    fn build(api: &'static Api, device: usize) -> Result<Kernels, String> {
        const MAJOR: c_int = 75; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        const MINOR: c_int = 76;
        let (mut major, mut minor) = (0, 0);
        let fail = |e: TchError| e.to_string();
        // SAFETY: plain driver queries into local integers.
        unsafe {
            api.check((api.device_attribute)(&mut major, MAJOR, device as c_int), "cuDeviceGetAttribute")
                .map_err(fail)?;
            api.check((api.device_attribute)(&mut minor, MINOR, device as c_int), "cuDeviceGetAttribute")
                .map_err(fail)?;
        }
        let ptx = api.compile(major, minor)?;
        let (mut ordinal, mut context) = (0, std::ptr::null_mut());
        // SAFETY: driver calls with out-pointers to locals; retaining the primary context is what
        // the runtime does for ATen (the reference is kept for the process's lifetime).
        unsafe {
            api.check((api.device_get)(&mut ordinal, device as c_int), "cuDeviceGet").map_err(fail)?;
            api.check((api.primary_ctx_retain)(&mut context, ordinal), "cuDevicePrimaryCtxRetain").map_err(fail)?;
        }
        let kernels_context = context;
        // SAFETY: as above.
        unsafe { make_current(api, kernels_context) }.map_err(fail)?;
        let mut module = std::ptr::null_mut();
        // SAFETY: `ptx` is NUL-terminated PTX from NVRTC; the module stays loaded for the
        // process's lifetime (the kernels are leaked with it).
        unsafe {
            api.check((api.module_load_data)(&mut module, ptx.as_ptr().cast()), "cuModuleLoadData").map_err(fail)?;
        }
        let function = |name: &CStr| {
            let mut f = std::ptr::null_mut();
            // SAFETY: a loaded module and a NUL-terminated name.
            unsafe { api.check((api.module_get_function)(&mut f, module, name.as_ptr()), "cuModuleGetFunction") }
                .map(|()| f)
                .map_err(fail)
        };
        Ok(Kernels {
            api,
            context: kernels_context,
            chunk_topk: function(c"chunk_topk")?,
            ef_update: function(c"ef_update")?,
            chunk_mean: function(c"chunk_mean")?,
        })
    }

    /// Launches `function` on `blocks` blocks of `threads` threads (with `shared_bytes` of dynamic
    /// shared memory each) on the default stream.
    ///
    /// # Safety
    /// `args` must match the kernel's parameters in number, order and type, and every pointer
    /// among them must be valid for the accesses the kernel makes.
    unsafe fn launch(
        &self,
        function: *mut c_void,
        blocks: c_uint,
        threads: c_uint,
        shared_bytes: c_uint,
        args: &mut [*mut c_void],
    ) -> Result<(), TchError> {
        // The calling thread may never have touched the device through ATen's runtime calls
        // (a tokio worker, say), and driver launches need the context current.
        make_current(self.api, self.context)?;
        let result = (self.api.launch)(
            function,
            blocks,
            1,
            1,
            threads,
            1,
            1,
            shared_bytes,
            std::ptr::null_mut(),
            args.as_mut_ptr(),
            std::ptr::null_mut(),
        );
        self.api.check(result, "cuLaunchKernel")
    }
}

/// Makes `context` current on this thread if it is not.
///
/// # Safety
/// `context` must be a live CUDA context.
unsafe fn make_current(api: &Api, context: *mut c_void) -> Result<(), TchError> {
    let mut current = std::ptr::null_mut();
    api.check((api.ctx_get_current)(&mut current), "cuCtxGetCurrent")?;
    if current != context {
        api.check((api.ctx_set_current)(context), "cuCtxSetCurrent")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Off CUDA every kernel declines, leaving the work (and the tensors) to ATen's operators.
    #[test]
    fn kernels_decline_cpu_tensors_and_touch_nothing() {
        let cpu = (Kind::Float, Device::Cpu);
        let magnitude = Tensor::rand([4, 64], cpu);
        assert!(chunk_topk(&magnitude, 8).unwrap().is_none());
        let mut e = Tensor::ones([8, 8], cpu);
        let d = Tensor::ones([8, 8], cpu);
        let layout = ChunkLayout { cols: 8, h: 8, w: 8, first_chunk: 0 };
        assert!(!ef_update(&mut e, &d, &Tensor::zeros([1, 64], cpu), layout, 0.5).unwrap());
        assert_eq!(e.sum(Kind::Float).double_value(&[]), 64.0);
        let local = Tensor::zeros([1, 1, 4], (Kind::Int16, Device::Cpu));
        let values = Tensor::ones([1, 1, 4], cpu);
        let row = Tensor::zeros([1], (Kind::Int64, Device::Cpu));
        assert!(chunk_mean(&local, &values, &row, &row, 64, 8, 8).unwrap().is_none());
    }
}
