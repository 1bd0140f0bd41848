# phx-hook: the local gate is `make ci`, which is what CI runs (.ci/run).
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build test lint demo ci deps forbid

all: build

deps:
	tests/scripts/install-deps.sh

build:
	$(CARGO) build --release --locked

## test: install what the tests need, then run them all (unit + integration, as root).
test: deps
	$(CARGO) test --locked

lint: forbid
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## forbid: module-boundary rules from STYLE.md §5.2, and no leftover markers.
forbid:
	@tests/scripts/forbid.sh

## demo: the main job end to end on this machine, with throwaway keys and vault.
demo: deps build
	tests/scripts/demo.sh target/release/phx-hook

ci: lint test
