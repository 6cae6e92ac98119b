"""What the training loop keeps track of between steps: where it is, the current logging window, what it logged.

- :class:`LoopState`: step, epoch, position in the epoch, best checkpoint: what a resumed run needs besides
  the weights and the optimizer;
- :class:`LogWindow`: the sums of one logging window (its mean loss is what a log record says);
- :class:`History`: one record per logging window and per evaluation.

All three turn into plain numbers for a training state (JSON) and back, so a resumed run logs what an
uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch


@dataclass
class History:
    """What a run logged: one record per logging window and per evaluation."""

    log: list = field(default_factory=list)
    eval: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"log": self.log, "eval": self.eval}


@dataclass
class LoopState:
    """Where the loop is: what a resumed run needs besides weights and optimizer."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already done
    best_metric: float | None = None
    best_dir: str | None = None
    window: dict = field(default_factory=dict)  # the logging window's sums (LogWindow.state(): plain numbers)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class LogWindow:
    """The sums of one logging window: loss (and its parts), steps, sentences, duplicates removed.

    The loss sums stay tensors on the device, so a GPU step does not wait for the host; ``state()``
    turns them into plain numbers (what a checkpoint stores, as JSON) and ``LogWindow(device, state)``
    takes them back, so a resumed run logs the same means as an uninterrupted one.
    """

    def __init__(self, device: torch.device, saved: dict | None = None):
        saved = saved or {}
        self.device = device
        self.loss = torch.tensor(float(saved.get("loss", 0.0)), device=device)
        self.parts = {name: torch.tensor(float(v), device=device) for name, v in saved.get("parts", {}).items()}
        self.steps = int(saved.get("steps", 0))
        self.sentences = int(saved.get("sentences", 0))
        self.duplicates = int(saved.get("duplicates", 0))
        self.start = time.perf_counter()

    def add(self, out: dict, sentences: int) -> None:
        """One step's output: ``loss`` and the parts of it that the objective returns beside it."""
        self.loss += out["loss"].detach().float()
        for name, part in out.items():
            if name != "loss":
                self.parts[name] = self.parts.get(name, 0) + part.float()
        self.steps += 1
        self.sentences += sentences

    def means(self) -> dict:
        """The window's mean loss (and parts), steps/s and sentences/s."""
        elapsed = time.perf_counter() - self.start
        return {"loss": float(self.loss) / self.steps, **{k: float(v) / self.steps for k, v in self.parts.items()},
                "steps_per_s": self.steps / elapsed, "sentences_per_s": self.sentences / elapsed}

    def state(self) -> dict:
        return {"loss": float(self.loss), "parts": {k: float(v) for k, v in self.parts.items()},
                "steps": self.steps, "sentences": self.sentences, "duplicates": self.duplicates}

    def reset(self) -> None:
        self.__init__(self.device)
