# phx-hook: the local gate is `make ci`, which is what CI runs (.ci/run).
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build test lint demo ci deps forbid bench bench-scan shellcheck fuzz deb deb-test

all: build

deps:
	tests/scripts/install-deps.sh

## build: the release binary, statically linked (static-pie: no dynamic loader work at
## every guest start; see BENCHMARKS.md).
build:
	$(CARGO) rustc --release --locked --bin phx-hook -- -C target-feature=+crt-static

## test: install what the tests need, then run them all (unit + integration, as root).
test: deps
	$(CARGO) test --locked

lint: forbid shellcheck
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## shellcheck: the programs that run inside guests (each as the guest runs it: lib.sh
## first), and the test and demo scripts.
shellcheck:
	@for p in src/deliver/guest/*.sh; do \
	  shellcheck -s sh "$$p" || { echo "shellcheck: $$p on its own" >&2; exit 1; }; \
	  [ "$$p" = src/deliver/guest/lib.sh ] && continue; \
	  head -1 "$$p" | grep -q standalone && continue; \
	  cat src/deliver/guest/lib.sh "$$p" | shellcheck -s sh - || { echo "shellcheck: $$p" >&2; exit 1; }; \
	done
	shellcheck tests/scripts/*.sh hooks/phx-hook debian/postinst debian/prerm debian/postrm

## forbid: module-boundary rules from STYLE.md §5.2, and no leftover markers.
forbid:
	@tests/scripts/forbid.sh

## demo: the main job end to end on this machine, with throwaway keys and vault.
demo: deps build
	tests/scripts/demo.sh target/release/phx-hook

ci: lint test

## bench: whole-process and in-process benchmarks; writes BENCHMARKS.md (several minutes).
bench: deps
	tests/scripts/install-deps.sh bench
	mkdir -p target/bench
	$(MAKE) build
	cp target/release/phx-hook target/bench/phx-hook
	$(CARGO) rustc --release --locked --bin phx-hook --config 'profile.release.strip="none"' -- -C target-feature=+crt-static
	cp target/release/phx-hook target/bench/phx-hook-symbols
	python3 bench/fixtures.py target/bench/fx >/dev/null
	python3 bench/run.py target/bench/phx-hook target/bench BENCHMARKS.md target/bench/criterion.txt
	PHX_BENCH_FIXTURES=$(CURDIR)/target/bench/fx $(CARGO) bench --locked --bench inprocess 2>/dev/null | grep -E "^[a-z].*|time:" | paste - - | sed 's/  */ /g' > target/bench/criterion.txt
	python3 bench/run.py --criterion-only target/bench/criterion.txt BENCHMARKS.md
	python3 bench/compare.py $(CURDIR)/target/bench/phx-hook $(CURDIR)/target/bench-venv BENCHMARKS.md

## bench-scan: only the scanner comparison (phx-hook, CredSweeper, detect-secrets on the
## labelled corpora), with a release build.
bench-scan:
	tests/scripts/install-deps.sh bench
	$(MAKE) build
	mkdir -p target/bench
	cp target/release/phx-hook target/bench/phx-hook
	python3 bench/compare.py $(CURDIR)/target/bench/phx-hook $(CURDIR)/target/bench-venv BENCHMARKS.md

## deb: the Debian package (cargo-deb) in target/debian/: the release binary in
## /usr/sbin, the man page and completions generated from the command-line definitions,
## the reconciler's units and the snippet pointing at /usr/sbin/phx-hook.
deb: build
	tests/scripts/install-deps.sh deb
	rm -rf target/deb-assets && mkdir -p target/deb-assets/completions target/deb-assets/systemd target/deb-assets/snippet
	target/release/phx-hook generate man | gzip -9n > target/deb-assets/phx-hook.1.gz
	target/release/phx-hook generate bash > target/deb-assets/completions/phx-hook
	target/release/phx-hook generate zsh > target/deb-assets/completions/_phx-hook
	target/release/phx-hook generate fish > target/deb-assets/completions/phx-hook.fish
	for u in contrib/systemd/*; do sed 's|/usr/local/sbin/phx-hook|/usr/sbin/phx-hook|g' "$$u" > target/deb-assets/systemd/$$(basename "$$u"); done
	sed 's|/usr/local/sbin/phx-hook|/usr/sbin/phx-hook|g' hooks/phx-hook > target/deb-assets/snippet/phx-hook
	cargo deb --no-build --no-strip --output target/debian/

## deb-test: install the package on this machine, use it, remove and purge it.
deb-test: deb
	tests/scripts/deb-test.sh target/debian/phx-hook_*.deb

## fuzz: every fuzz target for FUZZ_SECONDS each (default 60); writes FUZZING.md.
FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)
