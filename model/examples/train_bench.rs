//! Training throughput on CUDA: the `150m` and `1b` presets at sequence length 2048, bf16 compute
//! with fp32 master weights and AdamW state, random tokens. Prints one JSON object per preset:
//! tokens/s, MFU (6·N·tokens/s over the GPU's dense bf16 peak, N = parameters in matrix
//! multiplications), step time and GPU memory in use.
//!
//! The same model in plain PyTorch eager is `model/benches/train_baseline.py`;
//! `scripts/gpu-bench.sh` runs both. Build: `cargo build --release -p model --example train_bench`.
//!
//! Usage: `train_bench [--preset NAME[:BATCH[:MICRO_BATCH]]]... [--steps N] [--peak-tflops F]`

use std::time::Instant;

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
