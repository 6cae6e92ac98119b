#!/usr/bin/env bash
# The course in full mode on a GPU machine that cannot reach the Hugging Face hub, to time it.
#
#   bash benchmarks/full_mode_gpu.sh [OUT_DIR]
#
# Needs LCQMC in data/lcqmc/ (train.txt, dev.tsv: the cache that load_lcqmc() fills on Colab) and
# Jupyter's packages (pip install -e .[dev]). ERNIE 3.0 base is replaced by a stand-in with its
# architecture and vocabulary size and random weights (python -m cse_helpers.tools.tiny --ernie_base):
# the speed is ERNIE's, the Spearman figures mean nothing. The step budget is shortened with
# CSE_SETTINGS (override it from outside); run_course prints each notebook's time and, per training
# run, its speed and how long the full mode's 2,000 steps would take at that speed. A cell still
# running after CELL_TIMEOUT seconds (default 240) is interrupted, so its error names the stuck line;
# STACK_DUMP=60 also prints the kernel's stacks every 60 s (a hang inside a CUDA call too).
set -euo pipefail
out=${1:-/tmp/full-mode}
mkdir -p "$out"
"${PYTHON:-python3}" -m cse_helpers.tools.tiny --ernie_base --out "$out/ernie-base" \
    --train_path data/lcqmc/train.txt --dev_path data/lcqmc/dev.tsv
export CSE_MODEL="$out/ernie-base"
export CSE_SETTINGS=${CSE_SETTINGS:-max_steps=300,valid_steps=100,compare_steps=60}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
"${PYTHON:-python3}" -m cse_helpers.tools.run_course --full --runs_dir "$out/runs" --out "$out/executed" \
    --timeout "${CELL_TIMEOUT:-240}" ${STACK_DUMP:+--stack_dump "$STACK_DUMP"}
