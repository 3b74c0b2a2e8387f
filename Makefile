# The two commands: `make up` brings Wrenn up on this machine, `make test` runs everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup up test test-faults image bench build

help:
	@echo "make up    - install what is missing, build the guest image if needed, serve"
	@echo "make test  - install what is missing, then typecheck, lint, layer check, all tests"
	@echo "make test-faults - only the fault suite (tests/faults; control planes, agents, QEMUs killed mid-operation; PostgreSQL restart, full disk, dropped link), table to tests/faults/RESULTS.md"
	@echo "make bench - run the benchmarks (figures to stdout, JSON under bench/results/)"

setup:
	@scripts/setup.sh

build: setup
	@npm run build --silent

# The guest image is cached under $$WRENN_DIR (default ~/.wrenn) by a hash of its inputs.
image: build
	@guest/build.sh --name base >/dev/null

up: image
	@scripts/up.sh

test: image
	@echo "==> typecheck"; npm run --silent typecheck
	@echo "==> lint"; npm run --silent lint
	@echo "==> dependency direction"; npm run --silent check:layers
	@echo "==> postgres (for the database suite)"; scripts/ensure-postgres.sh >/dev/null
	@echo "==> chromium (for the dashboard's browser tests)"; scripts/ensure-chromium.sh
	@echo "==> tests"; npm test --silent
	@echo "==> fault suite (tests/faults, ~3 min)"; npx vitest run -c vitest.faults.config.ts

# The fault suite alone (`make test` runs it too), writing its table to tests/faults/RESULTS.md.
test-faults: image
	@echo "==> postgres (the control planes under fault run on it)"; scripts/ensure-postgres.sh >/dev/null
	@echo "==> fault suite"; printf '# Fault suite results (last `make test-faults` run)\n' > tests/faults/RESULTS.md
	@WRENN_FAULTS_RESULTS=tests/faults/RESULTS.md npx vitest run -c vitest.faults.config.ts; status=$$?; \
	  npx biome format --write tests/faults/RESULTS.md >/dev/null; exit $$status

bench: image
	@npm run --silent bench
