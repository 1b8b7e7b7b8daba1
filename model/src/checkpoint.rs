//! Checkpoints: a folder with the fp32 weights and the inner optimizer's state as safetensors and
//! a JSON manifest (window, global step, model fingerprint, file hashes), replaced atomically.
//!
//! ```text
//! CKPT/checkpoint.json        manifest (written last inside the staging folder)
//! CKPT/model.safetensors      one f32 tensor per parameter, torchtitan names
//! CKPT/optimizer.safetensors  exp_avg.<name>, exp_avg_sq.<name>
//! ```

use std::path::{Path, PathBuf};

use blake2::Digest;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::LlamaConfig;
use crate::optim::AdamW;
use crate::train::Trainer;
use crate::Blake2b256;

pub const MANIFEST: &str = "checkpoint.json";
pub const FORMAT: &str = "covenant-rs/checkpoint/v1";
const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub format: String,
    /// Window whose outer step the weights include.
    pub window: u64,
    /// Outer steps applied.
    pub global_step: u64,
    /// Inner optimizer steps taken (the learning-rate schedule's position).
    pub inner_step: u64,
    pub model: LlamaConfig,
    /// [`model_fingerprint`] of `model`.
    pub model_fingerprint: String,
    /// blake2b-256 of each file, hex.
    pub files: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
    #[error("checkpoint is for model {found}, this model is {expected}")]
    ModelMismatch { expected: String, found: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// blake2b-256 of the architecture (everything that changes the function or the parameter
/// layout; not the preset's name).
pub fn model_fingerprint(c: &LlamaConfig) -> String {
    let mut h = Blake2b256::new();
    h.update(b"covenant-rs/llama/v1");
    for v in [c.vocab_size, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_hidden] {
        h.update((v as u64).to_le_bytes());
    }
    h.update(c.rope_theta.to_le_bytes());
    h.update(c.norm_eps.to_le_bytes());
    h.update([c.tie_embeddings as u8]);
    hex(&h.finalize())
}

fn file_hash(path: &Path) -> Result<String, CheckpointError> {
    Ok(hex(&Blake2b256::digest(std::fs::read(path).map_err(io(path))?)))
}

/// Writes `trainer`'s weights and optimizer state to `dir`, replacing any checkpoint there only
/// once the new one is complete on disk.
pub fn save(
    dir: &Path,
    trainer: &Trainer,
    window: u64,
    global_step: u64,
) -> Result<CheckpointManifest, CheckpointError> {
    save_with(dir, trainer, window, global_step, |_| Ok(Vec::new()))
}

/// [`save`], plus files of the caller's (error feedback, validator scores, …) that `extras`
/// writes into the staging folder and names; they are hashed into the manifest and replaced
/// atomically together with the weights, so a checkpoint never mixes states of two windows.
pub fn save_with(
    dir: &Path,
    trainer: &Trainer,
    window: u64,
    global_step: u64,
    extras: impl FnOnce(&Path) -> Result<Vec<String>, CheckpointError>,
) -> Result<CheckpointManifest, CheckpointError> {
    let params = trainer.model.params();
    let stage = staging(dir);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(io(&stage))?;
    let named = |flat: &Tensor, prefix: &str| -> Result<Vec<(String, Tensor)>, CheckpointError> {
        let cpu = flat.f_to_device(Device::Cpu)?;
        (0..params.len()).map(|i| Ok((format!("{prefix}{}", params.names()[i]), params.view_of(&cpu, i)?))).collect()
    };
    let model_path = stage.join(MODEL_FILE);
    Tensor::write_safetensors(&named(params.master(), "")?, &model_path)?;
    let mut opt = named(&trainer.optimizer.exp_avg, "exp_avg.")?;
    opt.extend(named(&trainer.optimizer.exp_avg_sq, "exp_avg_sq.")?);
    let opt_path = stage.join(OPTIMIZER_FILE);
    Tensor::write_safetensors(&opt, &opt_path)?;
    let config = trainer.model.config().clone();
    let manifest = CheckpointManifest {
        format: FORMAT.into(),
        window,
        global_step,
        inner_step: trainer.optimizer.step,
        model_fingerprint: model_fingerprint(&config),
        model: config,
        files: vec![(MODEL_FILE.into(), file_hash(&model_path)?), (OPTIMIZER_FILE.into(), file_hash(&opt_path)?)],
    };
    let mut manifest = manifest;
    for name in extras(&stage)? {
        if name.contains('/') || name == MANIFEST || manifest.files.iter().any(|(f, _)| *f == name) {
            return Err(CheckpointError::Invalid(stage.join(&name), "reserved or repeated file name".into()));
        }
        let hash = file_hash(&stage.join(&name))?;
        manifest.files.push((name, hash));
    }
    let manifest_path = stage.join(MANIFEST);
    let extra_paths: Vec<PathBuf> = manifest.files.iter().skip(2).map(|(f, _)| stage.join(f)).collect();
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).expect("manifest serializes"))
        .map_err(io(&manifest_path))?;
    for f in [&model_path, &opt_path, &manifest_path].into_iter().chain(&extra_paths) {
        std::fs::File::open(f).and_then(|f| f.sync_all()).map_err(io(f))?;
    }
    // Swap: the old checkpoint survives until the new one is in place.
    recover(dir)?;
    let old = previous(dir);
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&stage, dir).map_err(io(dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(manifest)
}

/// Where [`save_with`] keeps the previous checkpoint during its swap.
fn previous(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".previous");
    dir.with_file_name(name)
}

/// Finishes a swap that a crash interrupted between its two renames: if `dir` is gone but the
/// previous checkpoint is still beside it, the previous one is put back. Returns whether it did.
/// [`read_manifest`] and [`save_with`] call it, so callers only need it before checking whether
/// `dir` exists.
pub fn recover(dir: &Path) -> Result<bool, CheckpointError> {
    let old = previous(dir);
    if dir.exists() || !old.join(MANIFEST).exists() {
        return Ok(false);
    }
    std::fs::rename(&old, dir).map_err(io(dir))?;
    Ok(true)
}

fn staging(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".staging-{}", std::process::id()));
    dir.with_file_name(name)
}

/// Reads and checks the manifest of the checkpoint in `dir` (file hashes included).
pub fn read_manifest(dir: &Path) -> Result<CheckpointManifest, CheckpointError> {
    recover(dir)?;
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let m: CheckpointManifest =
        serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Invalid(path.clone(), e.to_string()))?;
    if m.format != FORMAT {
        return Err(CheckpointError::Invalid(path, format!("format `{}`", m.format)));
    }
    if model_fingerprint(&m.model) != m.model_fingerprint {
        return Err(CheckpointError::Invalid(path, "model fingerprint does not match its config".into()));
    }
    for (file, hash) in &m.files {
        if file.contains('/') {
            return Err(CheckpointError::Invalid(path, format!("file name `{file}` leaves the folder")));
        }
        let found = file_hash(&dir.join(file))?;
        if &found != hash {
            return Err(CheckpointError::Invalid(dir.join(file), format!("hash {found}, manifest says {hash}")));
        }
    }
    Ok(m)
}

/// A file that [`save_with`] stored beside the weights, checked against the manifest's hash.
pub fn read_extra(dir: &Path, manifest: &CheckpointManifest, name: &str) -> Result<Option<Vec<u8>>, CheckpointError> {
    let Some((_, hash)) = manifest.files.iter().find(|(f, _)| f == name) else { return Ok(None) };
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let found = hex(&Blake2b256::digest(&bytes));
    if &found != hash {
        return Err(CheckpointError::Invalid(path, format!("hash {found}, manifest says {hash}")));
    }
    Ok(Some(bytes))
}

/// Loads the checkpoint in `dir` into `trainer` (weights, optimizer moments and step). The
/// trainer is left unchanged if anything does not match.
pub fn load(dir: &Path, trainer: &mut Trainer) -> Result<CheckpointManifest, CheckpointError> {
    let manifest = read_manifest(dir)?;
    let expected = model_fingerprint(trainer.model.config());
    if manifest.model_fingerprint != expected {
        return Err(CheckpointError::ModelMismatch { expected, found: manifest.model_fingerprint });
    }
    let weights = read_flat(&dir.join(MODEL_FILE), "", trainer)?;
    let exp_avg = read_flat(&dir.join(OPTIMIZER_FILE), "exp_avg.", trainer)?;
    let exp_avg_sq = read_flat(&dir.join(OPTIMIZER_FILE), "exp_avg_sq.", trainer)?;
    let _guard = tch::no_grad_guard();
    trainer.model.params_mut().master_mut().f_copy_(&weights)?;
    trainer.model.params_mut().sync_compute()?;
    trainer.optimizer = AdamW::from_state(trainer.optimizer.config, exp_avg, exp_avg_sq, manifest.inner_step)?;
    Ok(manifest)
}

/// The name of the weights file inside a checkpoint folder (what a leading validator publishes
/// for late joiners).
pub fn weights_file(dir: &Path) -> PathBuf {
    dir.join(MODEL_FILE)
}

/// Loads only the weights of a `model.safetensors` file (a published checkpoint) into `trainer`;
/// the inner optimizer is left as it is. The trainer is unchanged if a tensor is missing or has
/// the wrong shape or type.
pub fn load_weights(path: &Path, trainer: &mut Trainer) -> Result<(), CheckpointError> {
    let weights = read_flat(path, "", trainer)?;
    let _guard = tch::no_grad_guard();
    trainer.model.params_mut().master_mut().f_copy_(&weights)?;
    trainer.model.params_mut().sync_compute()?;
    Ok(())
}

/// The tensors `{prefix}{name}` of every parameter in `path`, checked against the model and laid
/// out flat like its masters, on the model's device.
fn read_flat(path: &Path, prefix: &str, trainer: &Trainer) -> Result<Tensor, CheckpointError> {
    let mut tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
    let params = trainer.model.params();
    let mut parts = Vec::with_capacity(params.len());
    for (name, shape) in params.names().iter().zip(params.shapes()) {
        let key = format!("{prefix}{name}");
        let t = tensors
            .remove(&key)
            .ok_or_else(|| CheckpointError::Invalid(path.to_path_buf(), format!("missing `{key}`")))?;
        if t.size() != *shape || t.kind() != Kind::Float {
            return Err(CheckpointError::Invalid(
                path.to_path_buf(),
                format!("`{key}` is {:?} {:?}", t.kind(), t.size()),
            ));
        }
        parts.push(t.f_flatten(0, -1)?);
    }
    // A file for another architecture can hold every tensor this one needs (a deeper model's
    // first layers): tensors of the same kind that the model does not have are refused too.
    if let Some(extra) = tensors.keys().find(|k| k.starts_with(prefix)) {
        return Err(CheckpointError::Invalid(
            path.to_path_buf(),
            format!("`{extra}` is not a parameter of this model"),
        ));
    }
    Ok(Tensor::f_cat(&parts, 0)?.f_to_device(trainer.model.device())?)
}
