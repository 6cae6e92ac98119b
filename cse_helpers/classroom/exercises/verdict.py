"""What every check returns: a :class:`Verdict` (right, wrong with a hint, or not attempted yet), and the helpers the
checks of every notebook share (calling the learner's code, comparing numbers, naming a known mistake)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

TOLERANCE = 1e-4  # relative tolerance for answers that are exact numbers


@dataclass(frozen=True)
class Verdict:
    """The result of a check: ``passed``, and a ``message`` that says why."""

    passed: bool
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:  # what a notebook shows under the check cell
        return self.message

    __str__ = __repr__

    def or_raise(self) -> Verdict:
        """Raise AssertionError with the message unless the answer is right (the solutions notebook uses it)."""
        if not self.passed:
            raise AssertionError(self.message)
        return self


def _right(exercise: str, detail: str = "") -> Verdict:
    return Verdict(True, f"✔ {exercise}: right." + (f" {detail}" if detail else ""))


def _wrong(exercise: str, what: str) -> Verdict:
    return Verdict(False, f"✘ {exercise}: not yet. {what}")


def _not_attempted(exercise: str, what: str) -> Verdict:
    return Verdict(False, f"… {exercise}: not attempted yet. {what}, then run this cell again.", attempted=False)


class _Raised(Exception):
    """Your code raised an exception; carries the verdict that says so."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.message)
        self.verdict = verdict


def _call(exercise: str, fn: Callable, *args, described: str = ""):
    """``fn(*args)``, turning an exception raised by the learner's code into a verdict."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 -- any error in the learner's code is reported, not raised
        where = f" on {described}" if described else ""
        raise _Raised(_wrong(exercise, f"your function raised {type(e).__name__}: {e}{where}.")) from e


def _checked(exercise: str):
    """Decorator: a check whose body may raise :class:`_Raised` returns that verdict instead."""

    def wrap(check):
        def run(*args, **kwargs):
            try:
                return check(*args, **kwargs)
            except _Raised as raised:
                return raised.verdict

        run.__name__, run.__doc__, run.__wrapped__ = check.__name__, check.__doc__, check
        return run

    return wrap


def _close(a: float, b: float, rel: float = TOLERANCE, abs_: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)


def _number(value) -> float | None:
    """A float from a Python number, a NumPy scalar or a one-element tensor; None otherwise."""
    if isinstance(value, torch.Tensor):
        return float(value) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _mistake(value: float, candidates: Sequence[tuple[float, str]], rel: float = 1e-3) -> str | None:
    """The hint of the first known mistake whose value ``value`` matches."""
    for candidate, hint in candidates:
        if _close(value, candidate, rel=rel, abs_=1e-6):
            return hint
    return None


def _tensor(value, exercise: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise _Raised(_wrong(exercise, f"return a tensor of shape {shape}; got {type(value).__name__}.")) from e
    if tuple(value.shape) != shape:
        raise _Raised(_wrong(exercise, f"return a tensor of shape {shape}; got {tuple(value.shape)}."))
    return value
