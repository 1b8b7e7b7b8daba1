// A C entry point for ATen's multi-tensor fused AdamW kernel, which tch does not expose.
// The model keeps its parameters, gradients and both moments in one flat buffer each, so one call
// updates the whole model in a single pass over memory (CUDA and CPU kernels both exist).
#include <optional>

#include "ffi.h"

extern "C" {

// Each pointer is a `torch::Tensor*` (what tch's `Tensor::as_ptr` returns). `grad_scale` may be
// null; otherwise gradients are divided by it inside the kernel. Returns null on success, else a
// malloc'ed message the caller frees with `covenant_free_error`.
char* covenant_fused_adamw(const void* param, const void* grad, const void* exp_avg, const void* exp_avg_sq,
                           const void* step, double lr, double beta1, double beta2, double weight_decay,
                           double eps, const void* grad_scale) {
    using covenant::tensor;
    return covenant::guarded("unknown C++ exception in _fused_adamw_", [&] {
        std::optional<at::Tensor> scale;
        if (grad_scale != nullptr) scale = tensor(grad_scale);
        at::_fused_adamw_({tensor(param)}, {tensor(grad)}, {tensor(exp_avg)}, {tensor(exp_avg_sq)}, {},
                          {tensor(step)}, lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                          /*maximize=*/false, scale, std::nullopt);
    });
}

void covenant_free_error(char* message) { free(message); }
}
