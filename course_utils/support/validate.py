"""The one shared set of argument checks: each raises one line that names the argument, what
it must be and what it got. Every door check in the package is written with these."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any


class ConfigError(ValueError):
    """A training setting that cannot work, reported in one line that names the setting."""


class UnknownNameError(KeyError):
    """A model or recipe name that is not in its registry. It prints its one-line message as
    it is (a plain KeyError would print it quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def is_number(value: Any) -> bool:
    """A real number that is not a bool (True is an int to Python, not a setting)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    error: type[Exception] = ConfigError,
) -> None:
    """``value`` must be a finite number in [low, high) (or (low, high) with ``low_open``)."""
    if not is_number(value) or not math.isfinite(value):
        raise error(f"{name} must be a finite number, got {value!r}.")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and value >= high
    if below or above:
        left = "(" if low_open else "["
        span = (
            f"in {left}{low}, {high})" if high is not None else f"{'>' if low_open else '>='} {low}"
        )
        raise error(f"{name} must be {span}, got {value!r}.")


def require_int(
    name: str,
    value: Any,
    low: int = 1,
    high: int | None = None,
    *,
    error: type[Exception] = ConfigError,
    type_error: type[Exception] | None = None,
) -> None:
    """``value`` must be a whole number >= low (and <= high); ``type_error``, when given, is
    raised instead of ``error`` for a value that is no number at all."""
    if not is_number(value):
        raise (type_error or error)(f"{name} must be a whole number >= {low}, got {value!r}.")
    if not isinstance(value, numbers.Integral) or value < low:
        raise error(f"{name} must be a whole number >= {low}, got {value!r}.")
    if high is not None and value > high:
        raise error(f"{name} must be at most {high}, got {value!r}.")


def require_bool(name: str, value: Any, *, error: type[Exception] = ConfigError) -> None:
    """``value`` must be True or False (not 1, "yes" or None)."""
    if not isinstance(value, bool):
        raise error(f"{name} must be True or False, got {value!r}.")


def require_choice(
    name: str, value: Any, choices: Collection[str], *, error: type[Exception] = ConfigError
) -> None:
    """``value`` must be one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise error(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
