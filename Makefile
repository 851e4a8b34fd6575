# batchdrop — every command a developer or CI needs. `make help` lists them.
#
# Three virtual environments, made on first use:
#   .venv              the project (editable) with its dev tools
#   .venv-tools/sam    aws-sam-cli, which pins its own boto3 and packaging
#   .venv-tools/checkov checkov, which pins others again
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The newest Python 3.12+ found; Lambda runs python3.13 (see README, "Runtime").
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
SAM := .venv-tools/sam/bin/sam
CHECKOV := .venv-tools/checkov/bin/checkov
# The tools below never talk to AWS; these keep them from looking for an account.
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_REGION ?= $(AWS_DEFAULT_REGION)
export SAM_CLI_TELEMETRY := 0
TOOL_ENV := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true

.PHONY: help setup lint format typecheck unit integration pytest template-checks test demo bench build clean pre-commit chromium

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (set PYTHON=...)"; exit 2; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SAM):
	rm -rf .venv-tools/sam
	$(PYTHON) -m venv .venv-tools/sam
	.venv-tools/sam/bin/pip install --quiet 'aws-sam-cli>=1.140'

AWSCLI := .venv-tools/awscli/bin/aws
$(AWSCLI):
	rm -rf .venv-tools/awscli
	$(PYTHON) -m venv .venv-tools/awscli
	.venv-tools/awscli/bin/pip install --quiet awscli

$(CHECKOV):
	rm -rf .venv-tools/checkov
	$(PYTHON) -m venv .venv-tools/checkov
	.venv-tools/checkov/bin/pip install --quiet 'checkov>=3.2'

setup: $(BIN)/.installed $(SAM) $(CHECKOV) ## make the virtual environments (once)

lint: $(BIN)/.installed ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

pre-commit: $(BIN)/.installed ## install the git hooks of .pre-commit-config.yaml (ruff, formatter, secrets scan)
	$(BIN)/pre-commit install

format: $(BIN)/.installed ## ruff: fix what can be fixed, and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(BIN)/.installed ## mypy, with the pydantic plugin
	$(BIN)/mypy

# The coverage floor (pyproject) is for the whole suite; a part of it is not held to it.
unit: $(BIN)/.installed ## unit tests only (no network, sockets disabled)
	$(BIN)/pytest -m "not integration" --cov-fail-under=0

# The whole suite, a test file to a worker (its module-scoped stack stays on one): the integration tests
# mostly wait on the local Batch's clock, so four workers on two cores take about half the time of one.
PYTEST_WORKERS ?= 4
integration: $(BIN)/.installed chromium ## integration tests only (the embedded AWS over HTTP on 127.0.0.1; the report in Chromium)
	$(BIN)/pytest -m integration --cov-fail-under=0 -n $(PYTEST_WORKERS) --dist loadfile

pytest: $(BIN)/.installed chromium
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

# The report's browser tests (tests/browser) drive Debian's headless Chromium through Playwright, which
# downloads no browser of its own: installed with apt-get where it is missing (as root, or with sudo).
CHROMIUM ?= /usr/bin/chromium
chromium: ## install Debian's chromium for the browser tests, if missing
	@test -x $(CHROMIUM) || { echo "installing chromium (Debian's package) for the report's browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

template-checks: $(BIN)/.installed $(SAM) $(CHECKOV) ## cfn-lint, sam validate --lint, checkov on template.yaml
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(TOOL_ENV) $(SAM) validate --lint --template template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation --file template.yaml

test: setup lint typecheck pytest template-checks ## everything CI runs
	@echo "make test: all checks passed"

demo: $(BIN)/.installed ## the whole control plane on an embedded AWS, live (ARGS="--keep", "--speed 2"...)
	$(BIN)/python -m batchdrop_local.demo $(ARGS)

bench: $(BIN)/.installed $(AWSCLI) ## benchmarks: print measured ratios against their targets
	$(BIN)/python -m bench

# sam build installs the layer's dependencies with the runtime's own interpreter, python3.13, found on the
# PATH (arm64 wheels are fetched by platform tag: no Docker, no emulation). Not PYTHON: that may be a 3.12.
PYTHON313 ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)

# The functions run as their alias `live`, on a version SAM publishes when a function's code changes, not when only
# the shared layer does (where almost all of batchdrop's code is): each built function is stamped with the layer's
# content hash, so an upgrade of the layer alone changes every function's code and publishes them all.
build: $(SAM) ## sam build: the layer and functions for python3.13 on arm64, no Docker
	@test -n "$(PYTHON313)" || { echo "sam build needs python3.13, the functions' runtime (set PYTHON313=...)"; exit 2; }
	PATH="$(dir $(PYTHON313)):$$PATH" $(TOOL_ENV) $(SAM) build --template template.yaml
	@layer=$$(cd .aws-sam/build/SharedLayer && find . -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); \
	for function in .aws-sam/build/*Function; do echo "$$layer" > "$$function/shared_layer.sha256"; done; \
	echo "functions stamped with the shared layer's hash $$layer"

clean: ## remove virtual environments and build output
	rm -rf $(VENV) .venv-tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
