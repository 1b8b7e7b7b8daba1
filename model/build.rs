//! Compiles the C++ in `csrc/` (ATen entry points tch does not expose) against the libtorch that
//! torch-sys links (`LIBTORCH`, which `make setup` writes into `.cargo/config.toml`).

use std::path::PathBuf;

const SOURCES: [&str; 3] = ["csrc/fused_adamw.cpp", "csrc/leaf_grad.cpp", "csrc/swiglu_mlp.cpp"];

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let libtorch =
        PathBuf::from(std::env::var("LIBTORCH").expect("LIBTORCH is not set: run `make setup`, which configures it"));
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .files(SOURCES)
        .include(libtorch.join("include"))
        .include(libtorch.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("covenant_csrc");
}
