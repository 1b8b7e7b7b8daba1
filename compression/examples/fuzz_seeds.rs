//! Writes valid payloads for the fuzz target's model into a directory: the fuzzer's seed corpus.
//! Usage: `cargo run -p compression --example fuzz_seeds -- DIR`

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "compression/fuzz/corpus/decode".into());
    std::fs::create_dir_all(&dir)?;
    for (i, seed) in compression::fuzzing::seeds().iter().enumerate() {
        std::fs::write(format!("{dir}/seed-{i}"), seed)?;
    }
    Ok(())
}
