# One entry point for a fresh Debian 12 machine (run as root; no systemd needed).
#   make demo   set up, then run the appliance on its embedded default (SoftHSM + virtual cards)
#   make test   set up, then lint, type-check and run every test tier
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck pytest bench clean image-check release-check

setup: $(STAMP)
	@bash deps/apt-install

# Reinstall the project only when its metadata changed: a second `make setup` is quick.
$(STAMP): pyproject.toml deps/apt-packages.txt deps/apt-install
	@bash deps/apt-install
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	@$(VENV)/bin/appliance --config appliance.example.toml demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup lint
	$(VENV)/bin/pytest
	$(MAKE) image-check

# The live image: a clean build, then the self-test boot with BIOS and with UEFI (image/README.md).
image-check: setup
	@bash image/check

# Release check: two builds compared bit for bit, USB-stick boots, negative controls.
release-check: setup
	@bash image/release-check

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
