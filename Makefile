# The front door: `make demo` and `make test` install what is missing and
# build everything. `make check` is the lint gate.
SHELL := /bin/bash
export MIX_ENV ?= test
CARGO ?= cargo

.PHONY: all deps build demo test test-rust test-elixir check man bench stress cross portable dependent-check clean

all: build

# Erlang and Elixir come from the OS package manager; Rust from the machine's
# toolchain (rustup) when it is new enough for rustler (1.91), else from
# Debian 12's cargo-web (Rust 1.96, bookworm-security; its plain cargo is
# 1.63), else the distribution's cargo.
deps:
	@command -v elixir >/dev/null && command -v erl >/dev/null || { \
	  echo "==> installing Erlang and Elixir"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    erlang-base erlang-dev erlang-crypto erlang-syntax-tools erlang-parsetools \
	    erlang-eunit erlang-tools erlang-runtime-tools erlang-os-mon elixir >/dev/null; }
	@command -v $(CARGO) >/dev/null && $(CARGO) --version | \
	  awk '{split($$2, v, "."); exit !(v[1] > 1 || v[2] >= 91)}' || { \
	  echo "==> installing Rust (cargo-web, or cargo)"; \
	  apt-get update -qq && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo-web >/dev/null || \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo >/dev/null; }; }
	@command -v python3 >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null; }

build: deps
	$(CARGO) build --release --workspace
	mix compile

demo: export MIX_ENV = dev
demo: build
	mix run demo/demo.exs

test: build test-rust test-elixir

test-rust:
	$(CARGO) test --release --workspace

test-elixir:
	mix test

check: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) run --release -q -p corral_gen -- --check docs
	mix format --check-formatted
	CORRAL_SKIP_CARGO=1 mix compile --force --warnings-as-errors

# corral's man page (docs/man/corral.1) and bash, zsh and fish completions
# (docs/completions/), generated from its clap definition by
# native/corral_gen; committed, and `make check` fails when they are stale.
man:
	$(CARGO) run --release -q -p corral_gen -- docs

# Side-by-side measurements (README, "Measurements"). throughput, spawn and
# teardown write bench/results/<name>.{md,csv}; plot.exs draws their SVGs.
# MuonTrap joins them when MUONTRAP_PATH names a `muontrap` built by
# bench/muontrap-build, and is skipped (said so) otherwise.
bench: export MIX_ENV = dev
bench: build
	mix run bench/throughput.exs
	mix run bench/producer.exs
	mix run bench/spawn.exs
	mix run bench/teardown.exs
	mix run bench/cpu_overshoot.exs
	mix run bench/daemons.exs
	mix run bench/plot.exs

# Adversarial runs, not part of `make test`: every bench/stress/*.exs prints
# its rows of one table (case, runs, survivors, leftover cgroups, lost bytes,
# crashes) and exits non-zero on any survivor, leak, loss or crash.
stress: export MIX_ENV = dev
stress: build
	@fail=0; for f in bench/stress/*.exs; do \
	  [ -e "$$f" ] || continue; \
	  mix run "$$f" || fail=1; export CORRAL_STRESS_NO_HEADER=1; \
	done; exit $$fail

# Cross builds for two Nerves boards (aarch64 rpi4, armv7 rpi3) through the
# Nerves environment variables and the Mix compiler, with the ELF machine of
# each artifact checked and the helper run under qemu-user (.ci/cross).
# Installs Debian's cross toolchains when missing. Not part of `make test`.
cross: build
	.ci/cross

# The portable backend (macOS, FreeBSD), not part of `make test`: cargo
# check of the workspace for x86_64/aarch64-apple-darwin and
# x86_64-unknown-freebsd (build-std with Debian's rustc-web and
# rust-web-src, in target/portable-check; minutes on a first run), then
# tests/portable.rs and the ExUnit suite but for its :cgroup, :root, :vm
# and :slow tests with the backend forced on Linux (CORRAL_TEST_PORTABLE=1).
# `make test` runs tests/portable.rs and test/corral/portable_test.exs too.
portable: build
	.ci/portable

# Corral as a new app's path dependency (.ci/dependent-check): no cargo in
# PATH gives one message; with cargo it builds from scratch with progress
# shown; a MIX_ENV=prod release runs Corral.cmd. Not part of `make test`.
dependent-check: deps
	.ci/dependent-check

clean:
	$(CARGO) clean
	rm -rf _build priv
