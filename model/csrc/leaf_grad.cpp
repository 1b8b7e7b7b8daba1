// Releasing a leaf's gradient, which tch can only zero in place.
#include "ffi.h"

extern "C" {

// Drops the gradient of `leaf` (a `torch::Tensor*`): its memory returns to the allocator, and the
// next backward pass hands the leaf its gradient buffer instead of adding into a zeroed one.
char* covenant_clear_grad(const void* leaf) {
    return covenant::guarded("unknown C++ exception clearing a gradient", [&] {
        const_cast<at::Tensor&>(covenant::tensor(leaf)).mutable_grad().reset();
    });
}
}
