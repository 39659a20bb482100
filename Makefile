# osvdi: the two commands of the README, and their parts.
#   make run    install what is missing (as root), build, register the demo desktop, serve on
#               http://127.0.0.1:8080 with data in ./data
#   make test   the whole test suite (formatting, lints, unit, integration and end-to-end tests,
#               on SQLite and on a throwaway PostgreSQL, and the OpenStack backend against a
#               real OpenStack test bed on loopback)

SHELL := /bin/bash
# Builds are kept outside the checkout so that fresh clones (CI) reuse them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/osvdi-target

.PHONY: run test deps build lint unit e2e

deps:
	@scripts/install-deps.sh

build: deps
	cargo build --release --locked -p osvdi

run: build
	$(CARGO_TARGET_DIR)/release/osvdi template demo --data-dir ./data
	$(CARGO_TARGET_DIR)/release/osvdi serve --data-dir ./data --listen 127.0.0.1:8080

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy -p osvdi-display --features ffmpeg --all-targets --locked -- -D warnings
	# The stream viewer (plain ES modules, no build step) type-checked by TypeScript.
	cd tests/e2e && npm ci --no-audit --no-fund && npm run typecheck

# The OpenStack tests run against the real OpenStack test bed (scripts/openstack-testbed/:
# installed into $(HOME)/.cache/osvdi-osbed on first use, started for the run and stopped after
# it, emptied of an earlier run's servers first), with 120-second Keystone tokens so that their
# renewal is seen.
unit: deps
	cargo test --workspace --locked --no-run
	OSVDI_OSBED_TOKEN_EXPIRATION=120 scripts/openstack-testbed/with-osbed.sh bash -c \
		'scripts/openstack-testbed/osbed.sh reset && scripts/with-postgres.sh cargo test --workspace --locked'
	cargo test -p osvdi-display --features ffmpeg --locked

# The browser tests (tests/e2e): Debian's Chromium, driven by playwright-core from Node (20+),
# against the real osvdi binary with the demo desktop; screenshots in tests/e2e/artifacts/.
e2e: deps
	cargo build --locked -p osvdi
	cd tests/e2e && npm ci --no-audit --no-fund && \
		OSVDI_BIN=$(CARGO_TARGET_DIR)/debug/osvdi node --test --test-concurrency=1 --test-reporter=spec

test: deps lint unit e2e

# The OpenStack test bed of issue 7 (scripts/openstack-testbed/README.md): install what is
# missing, start it on 127.0.0.1 and leave it running; `osbed.sh env` prints its credentials.
.PHONY: openstack-testbed
openstack-testbed:
	scripts/openstack-testbed/osbed.sh install
	scripts/openstack-testbed/osbed.sh start
