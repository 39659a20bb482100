# osvdi: the two commands of the README, and their parts.
#   make run    install what is missing (as root), build, register the demo desktop, serve on
#               http://127.0.0.1:8080 with data in ./data
#   make test   the whole test suite (formatting, lints, unit, integration and end-to-end tests,
#               on SQLite and on a throwaway PostgreSQL)

SHELL := /bin/bash
# Builds are kept outside the checkout so that fresh clones (CI) reuse them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/osvdi-target

.PHONY: run test deps build lint unit

deps:
	@scripts/install-deps.sh

build: deps
	cargo build --release --locked -p osvdi

run: build
	$(CARGO_TARGET_DIR)/release/osvdi template demo --data-dir ./data
	$(CARGO_TARGET_DIR)/release/osvdi serve --data-dir ./data --listen 127.0.0.1:8080

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit: deps
	scripts/with-postgres.sh cargo test --workspace --locked

test: deps lint unit
