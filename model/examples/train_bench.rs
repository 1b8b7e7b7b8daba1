//! Training throughput on CUDA: the `150m` and `1b` presets at sequence length 2048, bf16 compute
//! with fp32 master weights and AdamW state, random tokens. Prints one JSON object per preset:
//! tokens/s, MFU (6·N·tokens/s over the GPU's dense bf16 peak, N = parameters in matrix
//! multiplications), step time and GPU memory in use.
//!
//! The same model in plain PyTorch eager is `model/benches/train_baseline.py`;
//! `scripts/gpu-bench.sh` runs both. Build: `cargo build --release -p model --example train_bench`.
//!
//! Before timing, it checks on the device that the fused SwiGLU block computes what its ATen
//! composition does, printing both ones' bf16 errors against an f32 evaluation.
//!
//! Usage: `train_bench [--preset NAME[:BATCH[:MICRO_BATCH]]]... [--steps N] [--peak-tflops F]`

use std::time::Instant;

use model::ops;
use model::optim::LrSchedule;
use model::{Llama, LlamaConfig, TrainConfig, Trainer};
use tch::{Device, Kind, Tensor};

const SEQ: i64 = 2048;

fn gpu_memory_used_mib() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// ‖a − b‖ / ‖b‖ in f32.
fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_kind(Kind::Float), b.to_kind(Kind::Float));
    (&a - &b).norm().double_value(&[]) / b.norm().double_value(&[])
}

/// Output and input gradients of `f(inputs)` for the output gradient `dy`.
fn value_and_grads(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], dy: &Tensor) -> Vec<Tensor> {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().copy().set_requires_grad(true)).collect();
    let y = f(&leaves);
    (&y * dy).sum(Kind::Float).backward();
    std::iter::once(y.detach()).chain(leaves.iter().map(|l| l.grad())).collect()
}

/// The fused SwiGLU block and its ATen composition, both in bf16 on `device` at 1b shapes,
/// against the composition in f32: prints each one's relative error (output, dx, dw13, dw2).
fn check_swiglu_mlp(device: Device) {
    let (tokens, dim, hidden) = (4096, 2048, 8192);
    let f32 = (Kind::Float, device);
    let inputs = [
        Tensor::randn([tokens, dim], f32),
        Tensor::randn([2 * hidden, dim], f32) * 0.02,
        Tensor::randn([dim, hidden], f32) * 0.02,
    ];
    let dy = Tensor::randn([tokens, dim], f32);
    let bf16 = |ts: &[Tensor]| ts.iter().map(|t| t.to_kind(Kind::BFloat16)).collect::<Vec<_>>();
    let exact = value_and_grads(|t| ops::swiglu_mlp_reference(&t[0], &t[1], &t[2]).expect("reference"), &inputs, &dy);
    let dy16 = dy.to_kind(Kind::BFloat16);
    let fused = value_and_grads(|t| ops::swiglu_mlp(&t[0], &t[1], &t[2]).expect("swiglu_mlp"), &bf16(&inputs), &dy16);
    let composed =
        value_and_grads(|t| ops::swiglu_mlp_reference(&t[0], &t[1], &t[2]).expect("reference"), &bf16(&inputs), &dy16);
    let errors = |got: &[Tensor]| {
        got.iter().zip(&exact).map(|(a, b)| format!("{:.2e}", relative_error(a, b))).collect::<Vec<_>>().join(", ")
    };
    println!(
        "{{\"check\": \"swiglu_mlp bf16 vs f32 (y, dx, dw13, dw2)\", \"fused\": [{}], \"aten_ops\": [{}]}}",
        errors(&fused),
        errors(&composed)
    );
}

fn main() {
    // SAFETY: dlopen with a valid NUL-terminated name has no preconditions (see neuron/src/cuda.rs).
    unsafe { libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let steps: usize = value("--steps").and_then(|s| s.parse().ok()).unwrap_or(10);
    // H100 SXM dense bf16 peak.
    let peak: f64 = value("--peak-tflops").and_then(|s| s.parse().ok()).unwrap_or(989.4) * 1e12;
    // NAME[:BATCH[:MICRO_BATCH]]
    let mut presets: Vec<(String, i64, i64)> = args
        .windows(2)
        .filter(|w| w[0] == "--preset")
        .map(|w| {
            let mut parts = w[1].split(':');
            let name = parts.next().unwrap_or_default().to_string();
            let batch: i64 = parts.next().map_or(8, |b| b.parse().expect("batch is a number"));
            let micro: i64 = parts.next().map_or(batch, |b| b.parse().expect("micro-batch is a number"));
            (name, batch, micro)
        })
        .collect();
    if presets.is_empty() {
        presets = vec![("150m".into(), 16, 16), ("1b".into(), 8, 8)];
    }
    let device = Device::cuda_if_available();
    tch::set_num_threads(8);
    if device.is_cuda() {
        check_swiglu_mlp(device);
    }
    for (preset, batch_size, micro) in presets {
        let config = LlamaConfig::preset(&preset).expect("known preset");
        let n_matmul = config.num_matmul_params() as f64;
        let vocab = config.vocab_size as i64;
        let train = TrainConfig {
            schedule: LrSchedule { peak: 3e-4, warmup_steps: 10, total_steps: 1000, min_factor: 0.1 },
            batch_size: batch_size as usize,
            micro_batch_size: micro as usize,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(Llama::new(config, device, 0).expect("model"), train).expect("trainer");
        let batch = Tensor::randint(vocab, [batch_size, SEQ], (Kind::Int64, device));
        for _ in 0..3 {
            trainer.step(&batch).expect("warm-up step");
        }
        let started = Instant::now();
        // Steps are queued back to back; the previous step's statistics are read while the
        // device runs the next one (as a training loop that logs every step would).
        let mut pending = trainer.step_async(&batch).expect("step");
        for _ in 1..steps {
            let next = trainer.step_async(&batch).expect("step");
            pending.resolve().expect("step statistics");
            pending = next;
        }
        let last_loss = pending.resolve().expect("step statistics").loss;
        let secs = started.elapsed().as_secs_f64();
        let tokens_per_s = (steps as i64 * batch_size * SEQ) as f64 / secs;
        let mfu = 6.0 * n_matmul * tokens_per_s / peak;
        println!(
            "{{\"impl\": \"rust\", \"preset\": \"{preset}\", \"batch\": {batch_size}, \"micro_batch\": {micro}, \"seq\": {SEQ}, \"tokens_per_s\": {tokens_per_s:.0}, \"mfu\": {mfu:.4}, \"step_ms\": {:.1}, \"gpu_mem_mib\": {}, \"loss\": {last_loss:.4}}}",
            secs * 1e3 / steps as f64,
            gpu_memory_used_mib().map(|m| m.to_string()).unwrap_or_else(|| "null".into()),
        );
        drop(trainer);
    }
}
