# covenant-rs — every target installs what it needs first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/covenant-rs
CARGO ?= cargo
# libtorch on CPU: one OpenMP thread per process (two threads on two cores are ~18x slower).
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RUST_BACKTRACE=1

.PHONY: setup build test demo fmt lint bench fuzz clean-cache

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

test: setup
	$(TEST_ENV) $(CARGO) test --workspace --release --locked --no-fail-fast

demo: setup
	$(CARGO) build --release --locked -p neuron
	target/release/neuron localnet

fmt:
	$(CARGO) fmt --all

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release --locked -- -D warnings

bench: setup
	$(TEST_ENV) $(CARGO) bench -p compression --bench codec

# FUZZ_SECONDS=N to fuzz longer than a minute.
fuzz: setup
	scripts/fuzz.sh

clean-cache:
	rm -rf $(CACHE)
