# The front door: `make demo` and `make test` install what is missing and
# build everything. `make check` is the lint gate.
SHELL := /bin/bash
export MIX_ENV ?= test
CARGO ?= cargo

.PHONY: all deps build demo test test-rust test-elixir check bench clean

all: build

# Erlang and Elixir come from the OS package manager; Rust from the machine's
# toolchain (rustup), or Debian's cargo when there is none.
deps:
	@command -v elixir >/dev/null && command -v erl >/dev/null || { \
	  echo "==> installing Erlang and Elixir"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    erlang-base erlang-dev erlang-crypto erlang-syntax-tools erlang-parsetools \
	    erlang-eunit erlang-tools erlang-runtime-tools erlang-os-mon elixir >/dev/null; }
	@command -v $(CARGO) >/dev/null || { \
	  echo "==> installing cargo"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo >/dev/null; }
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
	mix format --check-formatted
	CORRAL_SKIP_CARGO=1 mix compile --force --warnings-as-errors

bench: export MIX_ENV = dev
bench: build
	mix run bench/throughput.exs
	mix run bench/spawn.exs
	mix run bench/cpu_overshoot.exs
	mix run bench/daemons.exs

clean:
	$(CARGO) clean
	rm -rf _build priv
