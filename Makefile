# Two entry points, each with its own virtual environment made from the project's own files:
#   make course -> .venv       the five notebooks executed in quick mode, offline, on the shipped default model
#                              (executed copies in notebooks/executed/); `make demo` is a 2-minute CLI run
#   make test   -> .venv-test  the test suite, offline, on the CPU
#   make test-oldest -> .venv-oldest (the oldest supported Hugging Face stack) then the same test suite
# torch is installed first, pinned to the CPU build this project is tested with, unless the
# environment already has a torch (never reinstall the one Colab ships).

PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
# OMP_WAIT_POLICY=PASSIVE: torch's idle threads do not spin (a 10-20x slowdown on a busy 2-core machine)
OFFLINE = HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error OMP_WAIT_POLICY=PASSIVE

.PHONY: demo test test-oldest lint course clean

define make_env
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -c "import torch" 2>/dev/null || $(1)/bin/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(1)/bin/python -m pip install -q -e "$(2)"
	touch $(1)/.installed
endef

.venv/.installed: requirements.txt pyproject.toml
	$(call make_env,.venv,.[dev])

.venv-test/.installed: requirements.txt pyproject.toml
	$(call make_env,.venv-test,.[dev])

demo: .venv/.installed
	$(OFFLINE) .venv/bin/python -m cse_helpers.demo

test: .venv-test/.installed
	$(OFFLINE) .venv-test/bin/python -m pytest -q

# The notebooks, executed top to bottom in quick mode (nbclient), each under 3 minutes on 2 CPU cores.
course: .venv/.installed
	RUN_NOTEBOOKS=1 CSE_QUICK=1 $(OFFLINE) .venv/bin/python -m pytest tests/test_notebooks.py -m notebooks -q --durations=5

# The lower end of requirements.txt: transformers 4.46 (its last patch release, 4.46.3) with the oldest
# tokenizers and safetensors that requirements.txt allows; huggingface_hub is capped below 1.0 by
# transformers 4.46.3 itself. torch stays the CPU build above (the lower bound torch 2.4 is not tested:
# any other torch version would pull a multi-GB CUDA build). The venv is always fresh: torch is
# installed first so that nothing pulls another torch.
OLDEST_PINS ?= "transformers==4.46.3" "tokenizers==0.20.0" "safetensors==0.4.3" "huggingface_hub<1.0"

.venv-oldest/.installed: requirements.txt pyproject.toml
	rm -rf .venv-oldest
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install -q --upgrade pip
	.venv-oldest/bin/python -m pip install -q "torch==$(TORCH_VERSION)"
	.venv-oldest/bin/python -m pip install -q -e ".[dev]" $(OLDEST_PINS)
	touch .venv-oldest/.installed

test-oldest: .venv-oldest/.installed
	$(OFFLINE) .venv-oldest/bin/python -m pytest -q

lint: .venv-test/.installed
	.venv-test/bin/python -m ruff check cse_helpers tests benchmarks

clean:
	rm -rf .venv .venv-test .venv-oldest runs
