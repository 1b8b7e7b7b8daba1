//! `neuron data prepare|pool` and `neuron train` end to end on real text.

mod common;

use std::process::{Command, Output};

fn neuron(args: &[&str]) -> Output {
    Command::new(common::neuron_binary()).args(args).env("OMP_NUM_THREADS", "1").output().expect("neuron runs")
}

fn ok(args: &[&str]) -> Output {
    let out = neuron(args);
    assert!(out.status.success(), "neuron {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn prepare_pool_and_train() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plays = model::cache_dir().join("data/text/shakespeare");
    let mut inputs: Vec<String> =
        std::fs::read_dir(&plays).unwrap().map(|e| e.unwrap().path().to_string_lossy().into_owned()).collect();
    inputs.sort();
    let mut args = vec!["data", "prepare", "--output", data.to_str().unwrap(), "--seq-len", "64", "--input"];
    args.extend(inputs.iter().take(2).map(String::as_str));
    ok(&args);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["tokenizer"]["name"], "gpt2");
    assert_eq!(manifest["seq_len"], 64);
    let samples = manifest["samples"].as_u64().unwrap();
    assert!(samples > 500, "{samples}");

    // The same pool from two processes, and from the library in this one.
    let pool = |uid: &str| {
        let out = ok(&[
            "data",
            "pool",
            "--data",
            data.to_str().unwrap(),
            "--netuid",
            "3",
            "--uid",
            uid,
            "--window",
            "12",
            "--size",
            "100",
        ]);
        serde_json::from_slice::<Vec<u64>>(&out.stdout).unwrap()
    };
    let (a, b) = (pool("5"), pool("5"));
    assert_eq!(a, b);
    assert_eq!(a, model::data::pool::sample_pool(3, 5, 12, samples, 100));
    assert_ne!(a, pool("6"));

    let out = ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--preset",
        "tiny",
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--log-json",
    ]);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"], i as u64);
        let loss = l["loss"].as_f64().unwrap();
        assert!((5.0..12.0).contains(&loss), "{loss}");
        assert!(l["tokens_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(l["tokens"], 4 * 64);
    }

    // Asking for CUDA on a machine without it is a sentence, not a crash.
    if !tch::Cuda::is_available() {
        let out = neuron(&["train", "--data", data.to_str().unwrap(), "--device", "cuda", "--steps", "1"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no CUDA device"));
    }
}
