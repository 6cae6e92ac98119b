# Two entry points, each with its own virtual environment made from the project's own files:
#   make course -> .venv       the five notebooks executed in quick mode, offline, on the shipped default model
#                              (executed copies in notebooks/executed/); `make demo` is a 2-minute CLI run
#   make test   -> .venv-test  the test suite, offline, on the CPU (`make test-fast`: the core only, in under a minute)
#   make lint                  ruff on the package, the tests, the benchmarks, data/ and the notebooks
#   make test-oldest -> .venv-oldest (the oldest supported Hugging Face stack) then the same test suite
#   make lab    -> .venv       the interactive course in JupyterLab (LAB_ARGS="--port 8890 --no-browser" to pass options)
#   make site   -> build/site  the executed notebooks as a static HTML site (runs `make course` first if they are stale)
#   make test-browser          JupyterLab and the site in headless Chromium (tests/test_browser.py): installs Debian's
#                              chromium (apt-get) and Playwright (PyPI) where missing; screenshots in build/browser/
# torch is installed first, pinned to the CPU build this project is tested with, unless the
# environment already has a torch (never reinstall the one Colab ships).

PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
# OMP_WAIT_POLICY=PASSIVE: torch's idle threads do not spin (a 10-20x slowdown on a busy 2-core machine)
# PYTHONFAULTHANDLER=1: a process that dies of a signal (a gloo process of the multi-process tests, aborted by
# C++) prints the Python stack of each of its threads, so the failure says where it happened
OFFLINE = HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error OMP_WAIT_POLICY=PASSIVE \
	PYTHONFAULTHANDLER=1

.PHONY: demo test test-fast test-oldest lint course clean lab site test-browser default-model

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
	$(OFFLINE) .venv/bin/python -m cse_helpers.tools.demo

test: .venv-test/.installed
	$(OFFLINE) .venv-test/bin/python -m pytest -q

# The teaching core's tests, to run after each change: losses, objectives and the encoder (test_models), the
# training loop, the reproducible short runs, evaluate, data, augment and inference, without the tests marked `slow`
# (spawned processes, a command line run as a subprocess, anything over about 3 s). 179 tests in 40-45 s on this 2-core
# machine, with other work running beside it (the whole suite without the slow tests, `pytest -m "not slow"`: about
# 90 s). `make test` runs every test, the slow ones included.
CORE_TESTS = tests/test_losses.py tests/test_models.py tests/test_train.py tests/test_reproducible_weights.py \
	tests/test_evaluate.py tests/test_data.py tests/test_data_properties.py tests/test_augment.py \
	tests/test_inference.py tests/test_sample_data.py
test-fast: .venv-test/.installed
	$(OFFLINE) .venv-test/bin/python -m pytest -q -m "not slow" $(CORE_TESTS)

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

# The interactive course: JupyterLab (from requirements.txt) opened on notebooks/. As root, Jupyter needs --allow-root.
LAB_ARGS ?=
lab: .venv/.installed
	.venv/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The rendered course: build/site/index.html (the syllabus) and one page per executed notebook (nbconvert). The
# executed copies come from `make course`, which runs again when a notebook is newer than its executed copy.
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
EXECUTED := $(patsubst notebooks/%,notebooks/executed/%,$(NOTEBOOKS))
$(EXECUTED) &: $(NOTEBOOKS)
	$(MAKE) course

site: .venv/.installed $(EXECUTED)
	rm -rf build/site
	$(OFFLINE) .venv/bin/python -m cse_helpers.tools.site --out build/site

# The course in a real browser: JupyterLab runs notebooks 1-3 and their widgets are moved and clicked in
# headless Chromium, then every page of the site is opened (tests/test_browser.py, a few minutes). Playwright
# drives Debian's chromium (Playwright's own browser download is not used); both are installed where missing.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk

.venv/.browser: .venv/.installed | $(CHROMIUM)
	.venv/bin/python -m pip install -q -e ".[dev,browser]"
	touch .venv/.browser

test-browser: site .venv/.browser
	RUN_BROWSER=1 CHROMIUM=$(CHROMIUM) $(OFFLINE) .venv/bin/python -m pytest tests/test_browser.py -m browser -q \
		--durations=0 -rA

# Every Python file of the repository and the notebooks (ruff reads .ipynb cells itself); the ignored folders
# (.venv*, build/, notebooks/executed/) are skipped. About a second.
lint: .venv-test/.installed
	.venv-test/bin/python -m ruff check .

clean:
	rm -rf .venv .venv-test .venv-oldest runs build

# The shipped encoder (cse_helpers/default_model), rebuilt as its card says: the first model (the commit
# cse_helpers.tools.model_card.FIRST_MODEL_COMMIT) from the git history, then its continued pretraining with whole-word
# masking on the larger corpus (the Debian documentation packages are fetched with apt-get download). About 75
# minutes on one CPU core; the steps are the card's. (Recursively expanded: read once .venv exists.)
FIRST_MODEL_COMMIT ?= $(shell .venv/bin/python -c \
	"from cse_helpers.tools.model_card import FIRST_MODEL_COMMIT; print(FIRST_MODEL_COMMIT)")
default-model: .venv/.installed
	.venv/bin/python -m pip install -q -e ".[pretrain]"
	rm -rf build/first_model && mkdir -p build/first_model
	git archive $(FIRST_MODEL_COMMIT) cse_helpers/default_model | tar -x -C build/first_model
	$(OFFLINE) .venv/bin/python -m cse_helpers.tools.pretrain --out cse_helpers/default_model --seed 0 --threads 1 \
		--init-from build/first_model/cse_helpers/default_model --whole-word-masking --lr 5e-4 --steps 7803
