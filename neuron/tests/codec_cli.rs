//! `neuron codec` end to end: safetensors in, payload files, safetensors out.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use tch::{Kind, Tensor};

fn neuron(args: &[&str]) -> Output {
    Command::new(common::neuron_binary()).args(args).env("OMP_NUM_THREADS", "1").output().expect("neuron runs")
}

fn ok(args: &[&str]) -> Output {
    let out = neuron(args);
    assert!(out.status.success(), "neuron {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn write(path: &Path, tensors: &[(&str, Tensor)]) {
    Tensor::write_safetensors(tensors, path).unwrap();
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// A small LLaMA-like set of parameters: two matrices, a norm, a 3-D tensor.
fn model(seed: i64, scale: f64) -> Vec<(&'static str, Tensor)> {
    tch::manual_seed(seed);
    vec![
        ("layers.0.attention.wq.weight", Tensor::randn([128, 192], (Kind::Float, tch::Device::Cpu)) * scale),
        ("layers.0.attention_norm.weight", Tensor::randn([192], (Kind::Float, tch::Device::Cpu)) * scale),
        ("layers.0.feed_forward.w1.weight", Tensor::randn([96, 128], (Kind::Float, tch::Device::Cpu)) * scale),
        ("conv.weight", Tensor::randn([8, 3, 5, 5], (Kind::Float, tch::Device::Cpu)) * scale),
    ]
}

#[test]
fn encode_decode_conserves_error_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    write(&p("delta.st"), &model(1, 1e-3));
    write(&p("ef.st"), &model(2, 1e-2));
    let seed = "11".repeat(32);
    ok(&[
        "codec",
        "encode",
        "--input",
        p("delta.st").to_str().unwrap(),
        "--ef",
        p("ef.st").to_str().unwrap(),
        "--output",
        p("g.bin").to_str().unwrap(),
        "--ef-out",
        p("ef_new.st").to_str().unwrap(),
        "--netuid",
        "3",
        "--uid",
        "4",
        "--window",
        "99",
        "--seed",
        &seed,
    ]);
    ok(&["codec", "decode", "--input", p("g.bin").to_str().unwrap(), "--output", p("sent.st").to_str().unwrap()]);
    let (delta, ef, ef_new, sent) =
        (read(&p("delta.st")), read(&p("ef.st")), read(&p("ef_new.st")), read(&p("sent.st")));
    assert_eq!(sent.len(), 4);
    for (name, d) in &delta {
        let mid = &ef[name] * 0.95 + d;
        let back = &sent[name] + &ef_new[name];
        assert_eq!(sent[name].size(), d.size(), "{name}: shape");
        assert!(max_abs_diff(&mid, &back) <= 1e-7 * mid.abs().max().double_value(&[]), "{name}: conservation");
        // 1/64 of each 2-D matrix is sent (1-D parameters: everything).
        let nonzero = sent[name].ne(0.0).sum(Kind::Int64).int64_value(&[]);
        let numel = d.numel() as i64;
        if d.dim() == 1 {
            assert_eq!(nonzero, numel, "{name}");
        } else if name.contains("wq") {
            assert_eq!(nonzero, numel / 64, "{name}");
        }
    }

    let inspect = ok(&["codec", "inspect", "--json", p("g.bin").to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(report["uid"], 4);
    assert_eq!(report["window"], 99);
    assert_eq!(report["signature"], "valid (header hotkey)");
    assert_eq!(report["parameters"].as_array().unwrap().len(), 4);
    let human = String::from_utf8(ok(&["codec", "inspect", p("g.bin").to_str().unwrap()]).stdout).unwrap();
    assert!(human.contains("bits per kept value"), "{human}");

    // A flipped bit among the last codes (still a well-formed payload) breaks the signature; a
    // truncated file does not decode.
    let mut bytes = std::fs::read(p("g.bin")).unwrap();
    let n = bytes.len();
    bytes[n - compression::signature::SIGNATURE_LEN - 2] ^= 1;
    std::fs::write(p("bad.bin"), &bytes).unwrap();
    let out = neuron(&["codec", "inspect", "--json", p("bad.bin").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["signature"].as_str().unwrap().starts_with("not valid"), "{report}");
    std::fs::write(p("short.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let out = neuron(&[
        "codec",
        "decode",
        "--input",
        p("short.bin").to_str().unwrap(),
        "--output",
        p("x.st").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(!p("x.st").exists(), "no output on failure");
    assert!(String::from_utf8_lossy(&out.stderr).contains("payload is truncated"));
}

#[test]
fn entropy_coding_is_smaller_and_transmits_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    write(&p("delta.st"), &model(3, 1e-3));
    let s = |n: &str| p(n).to_str().unwrap().to_string();
    ok(&["codec", "encode", "--input", &s("delta.st"), "--output", &s("a.bin"), "--index-coding", "packed12"]);
    ok(&["codec", "encode", "--input", &s("delta.st"), "--output", &s("b.bin"), "--index-coding", "entropy"]);
    let (a, b) = (std::fs::metadata(p("a.bin")).unwrap().len(), std::fs::metadata(p("b.bin")).unwrap().len());
    assert!(b < a, "entropy {b} vs packed12 {a}");
    ok(&["codec", "decode", "--input", &s("a.bin"), "--output", &s("a.st")]);
    ok(&["codec", "decode", "--input", &s("b.bin"), "--output", &s("b.st")]);
    let (da, db) = (read(&p("a.st")), read(&p("b.st")));
    for (name, t) in &da {
        assert!(t.equal(&db[name]), "{name}: identical transmitted update");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&ok(&["codec", "inspect", "--json", &s("a.bin")]).stdout).unwrap();
    assert_eq!(report["signature"].as_str().unwrap(), "not valid: the signature slot is empty (unsigned payload)");
}

#[test]
fn aggregate_of_peers_matches_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let mut payloads = Vec::new();
    for peer in 0..3 {
        write(Path::new(&p(&format!("d{peer}.st"))), &model(10 + peer, 1e-3 * (1.0 + peer as f64)));
        ok(&["codec", "encode", "--input", &p(&format!("d{peer}.st")), "--output", &p(&format!("g{peer}.bin"))]);
        payloads.push(p(&format!("g{peer}.bin")));
    }
    let mut args = vec!["codec", "aggregate", "--output"];
    let out_median = p("median.st");
    args.push(&out_median);
    args.extend(payloads.iter().map(String::as_str));
    ok(&args);
    let out_mean = p("mean.st");
    let mut args = vec!["codec", "aggregate", "--mode", "mean", "--output", &out_mean];
    args.extend(payloads.iter().map(String::as_str));
    ok(&args);
    // The plain mean is (1/3)·Σ decode(g_i).
    let mut sum: Option<HashMap<String, Tensor>> = None;
    for (i, g) in payloads.iter().enumerate() {
        let out = p(&format!("t{i}.st"));
        ok(&["codec", "decode", "--input", g, "--output", &out]);
        let t = read(Path::new(&out));
        sum = Some(match sum {
            None => t,
            Some(s) => s
                .into_iter()
                .map(|(k, v)| {
                    let add = &v + &t[&k];
                    (k, add)
                })
                .collect(),
        });
    }
    let mean = read(Path::new(&out_mean));
    let median = read(Path::new(&out_median));
    for (name, s) in sum.unwrap() {
        let expect = s / 3.0;
        assert!(max_abs_diff(&expect, &mean[&name]) <= 1e-6 * expect.abs().max().double_value(&[]), "{name}");
        // Median clipping never produces a larger magnitude than the largest peer value.
        assert!(median[&name].abs().max().double_value(&[]) <= expect.abs().max().double_value(&[]) * 3.0);
    }
    // Payloads of different models are refused.
    write(Path::new(&p("other.st")), &[("x", Tensor::ones([64, 64], (Kind::Float, tch::Device::Cpu)))]);
    ok(&["codec", "encode", "--input", &p("other.st"), "--output", &p("other.bin")]);
    let out = neuron(&["codec", "aggregate", "--output", &p("bad.st"), &payloads[0], &p("other.bin")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("different model"));
}
