"""Every setting of a training run, in one dataclass, and the command line made from it.

Each field of :class:`TrainingArguments` carries its explanation (``setting(default, help)``): the one text
that ``python -m cse_helpers.train --help`` prints. The papers' values are read from
:mod:`cse_helpers.defaults`. :meth:`TrainingArguments.validate` checks every setting before anything is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

import torch

from .constants import METHODS
from .defaults import PAPERS, RANGES, check_in_range, paper
from .encoder import POOLERS, PROJECTORS
from .runtime import PRECISIONS

#: Dev metrics that can pick the best checkpoint (the keys of ``evaluate_pairs``); the classification
#: ones exist for 0/1 labels only.
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "best_accuracy", "best_f1")
METRICS = ("spearman", "pearson", *CLASSIFICATION_METRICS, "alignment", "uniformity")
#: Settings that decide what a run computes. A run resumed with another value of one of them would not
#: be the run its checkpoints come from, so ``--resume`` refuses it and names them. (Device, precision,
#: logging, evaluation and saving periods may change between the parts of a run.)
RUN_DEFINING = ("model", "method", "pooler", "mlp_only_train", "projector", "learning_rate", "weight_decay",
                "warmup_ratio", "max_grad_norm", "dropout", "batch_size", "max_seq_len", "num_train_epochs",
                "max_steps", "metric", "temperature", "margin", "dup_rate", "repeat_both_views", "repetition",
                "queue_size", "momentum", "generator", "mask_ratio", "lambda_rtd", "seed")
#: ESimCSE's views (``--repetition``): the paper's, and the two ablations of notebook 2.
REPETITIONS = ("second_view", "none", "same_length")
#: The settings that take one of a few values (the command line offers all but the metric as choices; a wrong
#: --metric gets the message of :meth:`TrainingArguments.validate`).
CHOICES = {"method": METHODS, "pooler": POOLERS, "projector": PROJECTORS, "precision": PRECISIONS, "metric": METRICS,
           "repetition": REPETITIONS}


def setting(default, help: str):
    """A field of :class:`TrainingArguments` with its explanation: the one text that ``--help`` shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainingArguments:
    """Every setting of a run. The names are the tutorial's command-line flags plus the methods' own.

    Each field's ``help`` (its metadata) is what ``python -m cse_helpers.train --help`` prints.
    """

    model: str | None = setting(None, "a Hugging Face hub name or a model folder; default: ERNIE 3.0 base when the "
                                      "hub (or its cache) has it, else the small encoder in cse_helpers/default_model")
    method: str = setting("simcse", "the training objective: simcse, esimcse or diffcse")
    train_path: str | None = setting(None, "the training sentences, one per line (UTF-8), e.g. data/train.txt")
    dev_path: str | None = setting(None, "labelled dev pairs, 'sentence1<TAB>sentence2<TAB>label' per line, e.g. "
                                         "data/dev.tsv; without it there is no evaluation and no 'best' export")
    save_dir: str = setting("runs/cse", "where the run is saved: the exports 'best' and 'last', and the training "
                                        "states (save_dir/checkpoints)")
    img_log_dir: str | None = setting(None, "where the figure of the curves goes (default: save_dir)")
    img_log_name: str = setting("curves.png", "the file name of that figure")
    pooler: str | None = setting(None, "how the token vectors become one sentence vector: cls, cls_before_pooler, "
                                       "pooler_output, mean or first_last_avg; default: the pooler saved with the "
                                       "model (cse_helpers.json), else cls")
    mlp_only_train: bool = setting(True, "SimCSE's unsupervised recipe: the cls pooler's MLP head in training only "
                                         "(evaluation and the exports take the raw [CLS] vector)")
    projector: str = setting("mlp", "the head on the pooler: mlp (SimCSE's dense + tanh, cls pooler only) "
                                    "or bn (DiffCSE's BatchNorm projector, any pooler)")
    learning_rate: float = setting(paper("learning_rate"), "AdamW's peak learning rate (the default: SimCSE's for "
                                                           "BERT-base)")
    weight_decay: float = setting(paper("weight_decay"), "AdamW's weight decay (SimCSE's: 0)")
    warmup_ratio: float = setting(0.1, "the share of the steps over which the learning rate rises linearly; then "
                                       "it decays linearly to 0")
    max_grad_norm: float = setting(1.0, "gradient clipping: the largest norm of all gradients together")
    dropout: float | None = setting(None, "the encoder's hidden and attention dropout, SimCSE's augmentation; "
                                          "default: the model's own (0.1 for BERT/ERNIE); the tutorial used 0.3")
    batch_size: int = setting(paper("batch_size"), "sentences per batch (B); each is encoded twice (2B rows), and "
                                                   "the other sentences of the batch are its negatives. Under "
                                                   "torchrun: the global batch, split over the processes")
    mini_batch_size: int = setting(0, "> 0: gradient caching; the batch is encoded this many sentences at a time "
                                      "and the loss is still the whole batch's, so memory grows with this number, "
                                      "not with --batch_size (about 1.3x the time); 0, or at least the batch (per "
                                      "process under torchrun): one pass")
    max_seq_len: int = setting(64, "tokens per row at most, special tokens included; longer sentences are cut")
    num_train_epochs: int = setting(1, "passes over the training sentences (unless --max_steps is given)")
    max_steps: int = setting(-1, "> 0: stop after that many optimizer steps, whatever --num_train_epochs says")
    valid_steps: int = setting(100, "evaluate on the dev pairs every N steps and at the end; the best score's "
                                    "model is exported to save_dir/best")
    logging_steps: int = setting(10, "every N steps, log the mean loss of those N steps, steps/s, sentences/s "
                                     "and the learning rate")
    eval_batch_size: int = setting(256, "sentences per batch when evaluating")
    metric: str = setting("spearman", "the dev metric that picks the best checkpoint: spearman, pearson, accuracy, "
                                      "precision, recall, f1, best_accuracy, best_f1 (these need 0/1 labels), "
                                      "alignment or uniformity")
    threshold: float = setting(0.5, "the cosine similarity above which a dev pair counts as similar (accuracy, "
                                    "precision, recall, f1)")
    temperature: float = setting(paper("temperature"), "InfoNCE's temperature: the cosine similarities are divided "
                                                       "by it (the default: SimCSE's)")
    margin: float = setting(paper("margin"), "an additive margin taken off the positive pair's cosine (0: plain "
                                             "InfoNCE)")
    dup_rate: float = setting(paper("dup_rate"), "ESimCSE: up to this share of a sentence's tokens is repeated in "
                                                 "its positive view (the default: the paper's)")
    repeat_both_views: bool = setting(False, "ESimCSE, the tutorial's variant: repeat words in both views (the "
                                             "paper: in the positive only)")
    repetition: str = setting("second_view", "ESimCSE: which views get repeated words: second_view (the paper), "
                                             "none (ablation: two identical views, as SimCSE, with the queue) or "
                                             "same_length (control: both views get the same number of repeats, at "
                                             "positions drawn apart, so their lengths match as in SimCSE)")
    queue_size: int = setting(paper("queue_size"), "ESimCSE: how many momentum-encoder embeddings of earlier "
                                                   "batches serve as extra negatives (0: none)")
    momentum: float = setting(paper("momentum"), "ESimCSE: the momentum encoder is the moving average momentum * "
                                                 "itself + (1 - momentum) * the encoder, after each step")
    generator: str | None = setting(None, "DiffCSE: the masked-LM that fills in the masked tokens; it must share "
                                          "the encoder's tokenizer (default: the model itself)")
    mask_ratio: float = setting(paper("mask_ratio"), "DiffCSE: the share of the tokens masked for replaced-token "
                                                     "detection")
    lambda_rtd: float = setting(paper("lambda_rtd"), "DiffCSE: the weight of the replaced-token-detection loss "
                                                     "(loss = contrastive + lambda_rtd * rtd)")
    seed: int = setting(42, "seeds every random draw: the same seed and settings repeat a run")
    device: str | None = setting(None, "cpu, cuda, cuda:0, mps or auto; default: a CUDA GPU when there is one, "
                                       "else the CPU")
    precision: str = setting("auto", "auto (bf16 on GPUs of compute capability 8.0+, fp16 on older ones, fp32 on "
                                     "the CPU), fp32, fp16 or bf16")
    save_steps: int = setting(0, "> 0: save the full training state every N steps (and at the end), for --resume")
    save_total_limit: int = setting(2, "how many of those training states to keep (the newest)")
    resume: bool = setting(False, "continue from the newest complete training state in save_dir/checkpoints "
                                  "(with the settings of that run)")
    overwrite_save_dir: bool = setting(False, "delete the run already in save_dir (its exports and training "
                                              "states) first")
    torch_compile: bool = setting(False, "torch.compile the encoder's backbone (see benchmarks/RESULTS.md for when "
                                         "it pays)")
    progress_bar: bool = setting(True, "show a progress bar")

    def validate(self) -> None:
        """Check every setting before anything is loaded (a wrong flag should not cost a model download)."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed and not (name == "pooler" and self.pooler is None):
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}.")
        if self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size}: contrastive learning needs at least 2 sentences per "
                             f"batch (the other sentences are the negatives); {PAPERS['batch_size']}.")
        for name in ("logging_steps", "valid_steps", "num_train_epochs", "eval_batch_size", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: it must be >= 1.")
        for name, low in (("save_steps", 0), ("queue_size", 0), ("max_seq_len", 3), ("mini_batch_size", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)}: it must be >= {low}.")
        for name in RANGES:
            if not (name == "dropout" and self.dropout is None):
                check_in_range(name, getattr(self, name))
        if self.device not in (None, "", "auto"):
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                raise ValueError(f"device={self.device!r} is not a device name: use cpu, cuda, cuda:0, mps, or auto "
                                 "(or leave --device out).") from None
        if self.repeat_both_views and self.repetition != "second_view":
            raise ValueError(f"repeat_both_views and repetition={self.repetition!r} contradict each other: "
                             "repeat_both_views is a variant of repetition='second_view'. Pass one of them.")
        if self.resume and self.overwrite_save_dir:
            raise ValueError("resume and overwrite_save_dir contradict each other: --resume continues the run in "
                             "save_dir, --overwrite_save_dir deletes it. Pass one of them.")
        if not self.save_dir:
            raise ValueError("save_dir is empty: pass --save_dir, the folder where the run is saved.")



#: What ``python -m cse_helpers.train --help`` says first.
DESCRIPTION = "The training loop shared by the notebooks and the command line."


def build_parser() -> argparse.ArgumentParser:
    """One flag per field of :class:`TrainingArguments` (``--name value``; booleans ``--x/--no-x``)."""
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.train", description=DESCRIPTION,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(TrainingArguments):
        flag, explanation = f"--{f.name}", f.metadata["help"]
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=explanation)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), None)
            if kind is None:
                kind = float if "float" in str(f.type) else int if str(f.type).startswith("int") else str
            choices = CHOICES.get(f.name) if f.name != "metric" else None  # a wrong --metric: validate()'s message
            parser.add_argument(flag, type=kind, default=f.default, choices=choices, help=explanation)
    return parser
