"""Messages in the words of the tool in use, and the one did-you-mean for every name lookup.

A message that tells the user which argument to change names it the way they gave it: the
command line's flag when the call came from ``python -m course_utils``, the Python keyword
otherwise. The command line runs inside ``command_line()``; everything else is Python::

    arg("overwrite", True)        # --overwrite              | overwrite=True
    arg("check_counts", False)    # --no-check-counts        | check_counts=False
    arg("source", "../x.tar.gz")  # --data ../x.tar.gz       | source='../x.tar.gz'
    arg("grad_clip", 1.0)         # --grad-clip 1.0          | grad_clip=1.0
    arg("out")                    # --out                    | out
    pick("--study NAME", "open_study(name=...)")  # any other wording, one per tool

A keyword's flag is ``--`` and the keyword with dashes (``FLAGS`` lists the exceptions, such
as ``source`` -> ``--data``); ``arg(..., flag="--study")`` names another one for one message.
``unknown(what, name, choices)`` words a name that is not in its registry with the nearest
choice (``closest``, the one did-you-mean). This module imports nothing of the package: the
support leaves that must stay import-free (``sources``) receive ``arg`` and ``closest`` from
``course_utils.data``.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FLAGS = {"source": "--data"}
"""Python keywords whose command-line flag is not ``--`` + the keyword with dashes."""

_UNSET = object()
_COMMAND_LINE: ContextVar[bool] = ContextVar("command_line", default=False)


@contextmanager
def command_line() -> Iterator[None]:
    """While this runs, messages use the command line's flags (``python -m course_utils``)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def in_command_line() -> bool:
    """Whether the call came from the command line (inside ``command_line()``)."""
    return _COMMAND_LINE.get()


def flag_of(keyword: str) -> str:
    """The command-line flag of a Python keyword: ``batch_size`` -> ``--batch-size``."""
    return FLAGS.get(keyword, "--" + keyword.replace("_", "-"))


def arg(keyword: str, value: object = _UNSET, *, flag: str | None = None) -> str:
    """``keyword`` (with ``value``) in the words of the tool in use; see the module's
    docstring. On the command line a boolean is the flag alone (``--no-`` for False)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not in_command_line():
        return keyword if value is _UNSET else f"{keyword}={value!r}"
    name = flag or flag_of(keyword)
    if isinstance(value, bool):
        return name if value else "--no-" + name.removeprefix("--")
    return name if value is _UNSET else f"{name} {shlex.quote(str(value))}"


def pick(command_line: str, python: str) -> str:
    """One of two wordings, the command line's or Python's, for what ``arg`` cannot say."""
    return command_line if in_command_line() else python


def closest(name: object, choices: Iterable[str]) -> str | None:
    """The choice ``name`` most likely meant (case, dashes and typos forgiven), or None."""
    plain = {_plain(choice): choice for choice in choices}
    if not isinstance(name, str) or not plain:
        return None
    if _plain(name) in plain:
        return plain[_plain(name)]
    found = difflib.get_close_matches(_plain(name), list(plain), n=1)
    return plain[found[0]] if found else None


def unknown(what: str, name: object, choices: Iterable[str]) -> str:
    """The one line for a name not in its registry: ``unknown recipe 'Wang'; did you mean
    'wang'? choose one of: ...``."""
    choices = list(choices)
    nearest = closest(name, choices)
    guess = f" did you mean {nearest!r}?" if nearest else ""
    return f"unknown {what} {name!r};{guess} choose one of: {', '.join(choices)}."


def _plain(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")
