//! Real training of the `tiny` preset on real text (Shakespeare, GPT-2 BPE) on the CPU.
//! Needs `scripts/setup-data.sh` (run by `make setup`).

use std::path::PathBuf;

use model::checkpoint;
use model::data::pool::sample_pool;
use model::data::shards::{prepare, Dataset};
use model::data::tokenizer::TextTokenizer;
use model::optim::LrSchedule;
use model::{Llama, LlamaConfig, TrainConfig, Trainer};
use tch::{Device, Tensor};

const SEQ: usize = 64;

fn plays(n: usize) -> Vec<PathBuf> {
    let dir = model::cache_dir().join("data/text/shakespeare");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.truncate(n);
    files
}

fn dataset(dir: &std::path::Path) -> Dataset {
    let tokenizer = TextTokenizer::load("gpt2").unwrap();
    let manifest = prepare(&plays(3), &tokenizer, SEQ, 512, dir).unwrap();
    assert!(manifest.samples > 1000, "{} samples", manifest.samples);
    assert!(manifest.shards.len() > 1);
    Dataset::open(dir, true).unwrap()
}

fn trainer(seed: u64) -> Trainer {
    tch::set_num_threads(1);
    let config = TrainConfig {
        schedule: LrSchedule { peak: 3e-3, warmup_steps: 5, total_steps: 200, min_factor: 0.1 },
        batch_size: 8,
        micro_batch_size: 4,
        ..TrainConfig::default()
    };
    Trainer::new(Llama::new(LlamaConfig::preset("tiny").unwrap(), Device::Cpu, seed).unwrap(), config).unwrap()
}

#[test]
fn gpt2_tokenizer_is_the_real_one() {
    let t = TextTokenizer::load("gpt2").unwrap();
    assert_eq!(t.encode("Hello world").unwrap(), [15496, 995]);
    assert_eq!(t.vocab_size, 50257);
    assert_eq!(t.decode(&[15496, 995]).unwrap(), "Hello world");
}

#[test]
fn tiny_loss_falls_on_real_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let mut t = trainer(7);
    let pool = sample_pool(3, 1, 0, data.len(), 40 * 8);
    let held_out: Vec<Tensor> = (0..2)
        .map(|i| data.batch(&sample_pool(3, 99, 0, data.len(), 16)[i * 8..(i + 1) * 8], Device::Cpu).unwrap())
        .collect();
    let before = t.eval_loss(&held_out).unwrap();
    let mut losses = Vec::new();
    for step in 0..40 {
        let batch = data.batch(&pool[step * 8..(step + 1) * 8], Device::Cpu).unwrap();
        let stats = t.step(&batch).unwrap();
        assert!(stats.loss.is_finite() && stats.grad_norm.is_finite());
        losses.push(stats.loss);
    }
    let after = t.eval_loss(&held_out).unwrap();
    let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = losses[37..].iter().sum::<f64>() / 3.0;
    // ln(50304) ≈ 10.83 at initialisation; a few dozen steps on real text must get well below it.
    assert!((10.0..11.5).contains(&first), "initial loss {first}");
    assert!((10.0..11.5).contains(&before), "initial held-out loss {before}");
    assert!(last < first - 2.5, "training loss {first} -> {last}");
    assert!(after < before - 2.0, "held-out loss {before} -> {after}");
}

#[test]
fn pseudo_gradient_and_outer_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let mut t = trainer(3);
    let start = t.snapshot().unwrap();
    for step in 0..3 {
        t.step(&data.batch(&[step * 8, step * 8 + 1, step * 8 + 2, step * 8 + 3], Device::Cpu).unwrap()).unwrap();
    }
    let end = t.snapshot().unwrap();
    let delta = t.take_pseudo_gradient(&start).unwrap();
    // Δ = θ_start − θ_end, and θ is back at θ_start.
    assert!(t.model.params().master().equal(&start));
    assert!(delta.equal(&(&start - &end)));
    assert!(delta.abs().max().double_value(&[]) > 0.0);
    // θ − 1.0·Δ lands on θ_end (up to f32 rounding of the subtraction).
    t.apply_outer_step(&delta, 1.0).unwrap();
    let diff = (t.model.params().master() - &end).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "{diff}");
    // θ − α·G with α = 0.4 moves 40 % of the way.
    let mut t2 = trainer(3);
    t2.apply_outer_step(&delta, 0.4).unwrap();
    let moved = (t2.model.params().master() - &start).abs().sum(tch::Kind::Double).double_value(&[]);
    let full = delta.abs().sum(tch::Kind::Double).double_value(&[]);
    assert!((moved / full - 0.4).abs() < 1e-4, "{moved} / {full}");
}

#[test]
fn checkpoint_round_trip_is_bitwise_and_training_resumes_identically() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(&dir.path().join("data"));
    let mut a = trainer(11);
    for step in 0..2 {
        a.step(&data.batch(&[step, step + 10, step + 20, step + 30], Device::Cpu).unwrap()).unwrap();
    }
    let ckpt = dir.path().join("ckpt");
    let m = checkpoint::save(&ckpt, &a, 17, 5).unwrap();
    assert_eq!((m.window, m.global_step, m.inner_step), (17, 5, 2));
    let mut b = trainer(12);
    assert!(!b.model.params().master().equal(a.model.params().master()));
    let loaded = checkpoint::load(&ckpt, &mut b).unwrap();
    assert_eq!(loaded, m);
    assert!(b.model.params().master().equal(a.model.params().master()));
    assert!(b.optimizer.exp_avg.equal(&a.optimizer.exp_avg));
    assert!(b.optimizer.exp_avg_sq.equal(&a.optimizer.exp_avg_sq));
    assert_eq!(b.optimizer.step, 2);
    // The next step is bit-identical: the optimizer state really survived.
    let batch = data.batch(&[40, 41, 42, 43], Device::Cpu).unwrap();
    let (sa, sb) = (a.step(&batch).unwrap(), b.step(&batch).unwrap());
    assert_eq!(sa.loss.to_bits(), sb.loss.to_bits());
    assert!(b.model.params().master().equal(a.model.params().master()));

    // A corrupted file or another architecture is refused and leaves the trainer untouched.
    let before = b.model.params().master().copy();
    let model_file = ckpt.join("model.safetensors");
    let mut bytes = std::fs::read(&model_file).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&model_file, &bytes).unwrap();
    assert!(checkpoint::load(&ckpt, &mut b).is_err());
    assert!(b.model.params().master().equal(&before));
    let mut other = LlamaConfig::preset("tiny").unwrap();
    other.n_layers = 1;
    let mut c = Trainer::new(Llama::new(other, Device::Cpu, 1).unwrap(), TrainConfig::default()).unwrap();
    bytes[n - 1] ^= 1;
    std::fs::write(&model_file, &bytes).unwrap();
    assert!(matches!(checkpoint::load(&ckpt, &mut c), Err(checkpoint::CheckpointError::ModelMismatch { .. })));
}

#[test]
fn a_swap_interrupted_by_a_crash_is_recovered_and_weights_load_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(&dir.path().join("data"));
    let mut a = trainer(21);
    a.step(&data.batch(&[1, 2, 3, 4], Device::Cpu).unwrap()).unwrap();
    let ckpt = dir.path().join("ckpt");
    checkpoint::save(&ckpt, &a, 3, 1).unwrap();
    checkpoint::save(&ckpt, &a, 4, 2).unwrap();
    // A crash after the first rename of the next save's swap: only the previous one is left.
    std::fs::rename(&ckpt, dir.path().join("ckpt.previous")).unwrap();
    assert!(!ckpt.exists());
    let m = checkpoint::read_manifest(&ckpt).unwrap();
    assert_eq!((m.window, m.global_step), (4, 2));
    assert!(ckpt.exists() && !dir.path().join("ckpt.previous").exists());

    // The published form of a checkpoint is its weights file: it loads without the optimizer.
    let mut b = trainer(22);
    let moments = b.optimizer.exp_avg.copy();
    checkpoint::load_weights(&checkpoint::weights_file(&ckpt), &mut b).unwrap();
    assert!(b.model.params().master().equal(a.model.params().master()));
    assert!(b.optimizer.exp_avg.equal(&moments));
    assert_eq!(b.optimizer.step, 0);
    let mut other = LlamaConfig::preset("tiny").unwrap();
    other.n_layers = 1;
    let mut c = Trainer::new(Llama::new(other, Device::Cpu, 1).unwrap(), TrainConfig::default()).unwrap();
    assert!(checkpoint::load_weights(&checkpoint::weights_file(&ckpt), &mut c).is_err());
}

#[test]
fn initialisation_is_deterministic() {
    let config = LlamaConfig::preset("tiny").unwrap();
    let a = Llama::new(config.clone(), Device::Cpu, 5).unwrap();
    let b = Llama::new(config.clone(), Device::Cpu, 5).unwrap();
    let c = Llama::new(config, Device::Cpu, 6).unwrap();
    assert!(a.params().master().equal(b.params().master()));
    assert!(!a.params().master().equal(c.params().master()));
}

#[test]
fn micro_batches_accumulate_to_the_whole_batch_step() {
    let tokens = Tensor::randint(1000, [8, SEQ as i64], (tch::Kind::Int64, Device::Cpu));
    let step_with = |micro: usize| {
        let mut t = trainer(11);
        t.config.micro_batch_size = micro;
        let stats = t.step(&tokens).unwrap();
        (stats, t.model.params().master().copy())
    };
    let (whole, after_whole) = step_with(8);
    for micro in [4, 3, 1] {
        let (stats, after) = step_with(micro);
        assert!((stats.loss - whole.loss).abs() < 1e-5, "micro {micro}: loss {} vs {}", stats.loss, whole.loss);
        assert!(
            (stats.grad_norm - whole.grad_norm).abs() < 1e-5 * whole.grad_norm,
            "micro {micro}: grad norm {} vs {}",
            stats.grad_norm,
            whole.grad_norm
        );
        let diff = (&after - &after_whole).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "micro {micro}: parameters differ by {diff}");
    }
    // A second step starts from fresh gradients, not the first step's: with the warm-up's tiny
    // first learning rate its gradient is nearly the first one, not twice it.
    let mut t = trainer(11);
    let first = t.step(&tokens).unwrap();
    let second = t.step(&tokens).unwrap();
    let ratio = second.grad_norm / first.grad_norm;
    assert!((ratio - 1.0).abs() < 0.01, "second step's gradient norm is {ratio}× the first's");
}
