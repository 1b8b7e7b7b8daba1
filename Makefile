# covenant-rs — every target installs what it needs first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/covenant-rs
CARGO ?= cargo
# libtorch on CPU: one OpenMP thread per process (two threads on two cores are ~18x slower).
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RUST_BACKTRACE=1

.PHONY: setup setup-chain build test test-pallets demo fmt lint bench fuzz clean-cache

setup:
	@scripts/setup.sh
	@scripts/setup-data.sh
	@scripts/setup-chain.sh
	@scripts/setup-openskill.sh >/dev/null

# The dev chain alone: runtime wasm + chain spec (cached by content hash), chopsticks, the Python client.
setup-chain:
	@scripts/setup-chain.sh

# The production binary: no testkit (no local S3 server, no adversaries, no `localnet`).
build: setup
	$(CARGO) build --release --locked -p neuron

test: setup
	@scripts/setup-wallet-py.sh >/dev/null
	@scripts/setup-seaweedfs.sh >/dev/null
	$(TEST_ENV) $(CARGO) test --workspace --release --locked --no-fail-fast
	scripts/test-pallets.sh

# Unit tests of the dev chain's pallets: a native build of FRAME crates in a target dir of its own.
test-pallets:
	scripts/test-pallets.sh

# A local subnet: dev chain, local S3, 3 miners and a validator training the tiny model on real
# text for a few minutes, then a summary, an audit and report.html in ./localnet.
demo: setup
	$(CARGO) build --release --locked -p neuron --features testkit
	$(TEST_ENV) target/release/neuron localnet --out localnet $(DEMO_ARGS)

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --all --manifest-path chain/runtime/Cargo.toml

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --all --manifest-path chain/runtime/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets --release --locked -- -D warnings
	CARGO_TARGET_DIR=$(CACHE)/runtime-native-target $(CARGO) clippy --manifest-path chain/runtime/Cargo.toml \
		--workspace --all-targets --locked -- -D warnings

bench: setup
	$(TEST_ENV) $(CARGO) bench -p compression --bench codec

# FUZZ_SECONDS=N to fuzz longer than a minute.
fuzz: setup
	scripts/fuzz.sh

clean-cache:
	rm -rf $(CACHE)
