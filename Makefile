# One command sets up and runs each thing a user or CI does; see README.md.
# `make setup` is idempotent: it re-installs only when pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup test test-all lint browser quickstart cluster-test train-tiny clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first, pinned: any other torch pulls a multi-GB CUDA build on CPU machines.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

lint: setup
	$(BIN)/ruff check .

# Headless Chromium for tests/test_report_browser.py (Debian's package, as root); without
# it, that test is skipped and says so.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
		|| echo "make: no chromium (apt-get install chromium): the report's browser test is skipped"

test: lint browser
	$(BIN)/pytest

test-all: lint browser
	$(BIN)/pytest -m ''

quickstart: setup
	$(BIN)/steadytune sweep examples/quickstart.yaml

# The image and a Compose cluster for real (Docker, as root): docker/cluster-test.sh
cluster-test: setup
	bash docker/cluster-test.sh

train-tiny: setup
	$(BIN)/steadytune train examples/train-tiny.yaml --out runs/train-tiny

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
