// The LLaMA feed-forward block `w2·(silu(w1·x) ⊙ w3·x)` as one autograd node.
//
// Composed from ATen ops, this block is a chain of elementwise kernels around three matrix
// products: silu, the product, their three backward kernels and the concatenation of the fused
// [w1; w3] gradient, each a full pass over (tokens × ffn_hidden) activations, which at ffn_hidden
// = 4·dim are most of a layer's memory traffic. Here the activation and its gradient are one
// kernel each (on CUDA, compiled at run time by ATen's jiterator), the gradient of [w1; w3] is
// written in place by two matrix products, and the silu output is not kept for the backward pass.
#include <dlfcn.h>
#include <torch/csrc/autograd/custom_function.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "ffi.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using Jiterator = c10::SmallVector<at::Tensor> (*)(const std::string&, const std::string&, int,
                                                   const c10::SmallVector<at::Tensor>&,
                                                   const c10::SmallVector<at::Scalar>&, bool);

// `at::cuda::CompileAndLaunchKernel` is in libtorch_cuda, which a machine without CUDA cannot
// load, so it is looked up when first needed (the binaries dlopen libtorch_cuda on GPU machines).
Jiterator jiterator() {
    static const Jiterator fn = reinterpret_cast<Jiterator>(dlsym(
        RTLD_DEFAULT,
        "_ZN2at4cuda22CompileAndLaunchKernelERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEES8_iRKN3c1011"
        "SmallVectorINS_6TensorELj6EEERKNSA_INS9_6ScalarELj1EEEb"));
    return fn;
}

// Set when a jitted kernel failed to compile or launch: the ATen composition is used from then on.
std::atomic<bool> jiterator_failed{false};

bool use_jiterator(const at::Tensor& t) { return t.is_cuda() && !jiterator_failed.load() && jiterator() != nullptr; }

void jiterator_failure(const std::exception& e) {
    if (!jiterator_failed.exchange(true)) {
        std::fprintf(stderr, "warning: fused SwiGLU kernel unavailable, using ATen ops: %s\n", e.what());
    }
}

// The kernels compute in f32 (`T` is the inputs' math type) and store in the inputs' dtype.
const std::string kForward = R"(
template <typename T> T swiglu_forward(T g, T u) {
    return g / (T(1) + exp(-g)) * u;
})";

// d/dg [g·σ(g)] = σ(g)·(1 + g·(1 − σ(g))).
const std::string kBackward = R"(
template <typename T> void swiglu_backward(T dh, T g, T u, T& dg, T& du) {
    T s = T(1) / (T(1) + exp(-g));
    du = dh * g * s;
    dg = dh * u * s * (T(1) + g * (T(1) - s));
})";

// silu(g) ⊙ u
at::Tensor swiglu(const at::Tensor& g, const at::Tensor& u) {
    if (use_jiterator(g)) {
        try {
            return jiterator()(kForward, "swiglu_forward", 1, {g, u}, {}, false)[0];
        } catch (const std::exception& e) {
            jiterator_failure(e);
        }
    }
    return at::silu(g).mul_(u);
}

// (∂/∂g, ∂/∂u) of silu(g) ⊙ u, given the gradient `dh` of the product.
std::pair<at::Tensor, at::Tensor> swiglu_grad(const at::Tensor& dh, const at::Tensor& g, const at::Tensor& u) {
    if (use_jiterator(g)) {
        try {
            auto out = jiterator()(kBackward, "swiglu_backward", 2, {dh, g, u}, {}, true);
            return {out[0], out[1]};
        } catch (const std::exception& e) {
            jiterator_failure(e);
        }
    }
    auto s = at::sigmoid(g);
    auto du = dh * g * s;
    auto dg = dh * u * s * (g * (1 - s) + 1);
    return {dg, du};
}

struct SwiGluMlp : public torch::autograd::Function<SwiGluMlp> {
    // x: (..., dim); w13: [w1; w3], (2·hidden, dim); w2: (dim, hidden).
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w13,
                              const at::Tensor& w2) {
        const int64_t hidden = w2.size(1);
        TORCH_CHECK(w13.dim() == 2 && w13.size(0) == 2 * hidden && w13.size(1) == x.size(-1),
                    "swiglu_mlp: w13 must be (2·", hidden, ", ", x.size(-1), "), got ", w13.sizes());
        // Two products rather than one into (…, 2·hidden): the activation kernels then read
        // contiguous halves.
        auto g = at::linear(x, w13.narrow(0, 0, hidden));
        auto u = at::linear(x, w13.narrow(0, hidden, hidden));
        auto h = swiglu(g, u);
        ctx->save_for_backward({x, w13, w2, g, u, h});
        return at::linear(h, w2);
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        auto saved = ctx->get_saved_variables();
        const auto &x = saved[0], &w13 = saved[1], &w2 = saved[2], &g = saved[3], &u = saved[4], &h = saved[5];
        const int64_t dim = x.size(-1), hidden = w2.size(1);
        auto dy = grad_outputs[0].reshape({-1, dim});
        auto x2 = x.reshape({-1, dim});
        auto grad_w2 = dy.t().mm(h.reshape({-1, hidden}));
        auto dh = dy.mm(w2);
        auto [dg, du] = swiglu_grad(dh, g.reshape({-1, hidden}), u.reshape({-1, hidden}));
        auto grad_w13 = at::empty_like(w13);
        auto grad_w1 = grad_w13.narrow(0, 0, hidden);
        auto grad_w3 = grad_w13.narrow(0, hidden, hidden);
        at::mm_out(grad_w1, dg.t(), x2);
        at::mm_out(grad_w3, du.t(), x2);
        auto dx = dg.mm(w13.narrow(0, 0, hidden));
        dx.addmm_(du, w13.narrow(0, hidden, hidden));
        return {dx.view(x.sizes()), grad_w13, grad_w2};
    }
};

}  // namespace

extern "C" {

// `*out` receives a new `torch::Tensor*` (owned by the caller: tch's `Tensor::from_ptr`).
char* covenant_swiglu_mlp(const void* x, const void* w13, const void* w2, void** out) {
    using covenant::tensor;
    return covenant::guarded("unknown C++ exception in swiglu_mlp", [&] {
        auto y = SwiGluMlp::apply(tensor(x), tensor(w13), tensor(w2));
        *out = new at::Tensor(std::move(y));
    });
}
}
