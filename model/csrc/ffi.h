// Shared by the C entry points in this folder: tensor handles and exception capture.
#pragma once

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

namespace covenant {

// A `torch::Tensor*` from tch (`Tensor::as_ptr`) as a tensor reference.
inline const at::Tensor& tensor(const void* handle) { return *static_cast<const at::Tensor*>(handle); }

// Runs `body` and returns null, or a malloc'ed message if it threw (freed by the caller with
// `covenant_free_error`): no C++ exception may unwind into Rust.
template <typename F>
char* guarded(const char* what, F&& body) {
    try {
        std::forward<F>(body)();
        return nullptr;
    } catch (const std::exception& e) {
        return strdup(e.what());
    } catch (...) {
        return strdup(what);
    }
}

}  // namespace covenant
