"""`ConfigKey`: a configuration key's default, help and check, and the checks only configurations need.

A check is called as `check(key, value)`; it returns the value (normalised where a key has two
spellings, e.g. `profile_batch`) or raises `ValueError` naming the key.
"""

import numbers
from typing import Any
from typing import Callable
from typing import NamedTuple


class ConfigKey(NamedTuple):
    """A configuration key: its default, its help (what it is, its unit or format) and its check."""

    default: Any
    help: str
    check: Callable[[str, Any], Any]


def optional(check):
    """A check that lets `None` (the key's "derived from the others" default) through and applies `check` otherwise."""

    def check_optional(name, value):
        return None if value is None else check(name, value)

    return check_optional


def check_object(name, value):
    """Returns `value` if it is a dict (a JSON object)."""
    if not isinstance(value, dict):
        raise ValueError(f"`{name}` must be a JSON object; received {name}={value!r}.")
    return value


def check_jit_compile(name, value):
    """Returns `value` if it is `"auto"`, true or false (a JSON boolean; `1` is not true)."""
    if value != "auto" and not isinstance(value, bool):
        raise ValueError(f"`{name}` must be 'auto', true or false; received {name}={value!r}.")
    return value


def check_profile_batch(name, value):
    """`value` as Keras' `TensorBoard(profile_batch=...)` takes it: a batch (0: off) or `[start, stop]`.

    `"START,STOP"` and `"BATCH"` strings (the command line's and Keras' legacy form) become the
    list or the integer.
    """
    parsed = value
    if isinstance(value, str):
        try:
            parsed = [int(item) for item in value.split(",")]
        except ValueError:
            parsed = None
        else:
            parsed = parsed[0] if len(parsed) == 1 else parsed
    if _is_integer(parsed) and parsed >= 0:
        return int(parsed)
    if isinstance(parsed, (list, tuple)) and len(parsed) == 2 and all(map(_is_integer, parsed)):
        if 1 <= parsed[0] <= parsed[1]:
            return [int(parsed[0]), int(parsed[1])]
    raise ValueError(
        f"`{name}` must be a batch number >= 0 (0: off) or START,STOP with 1 <= START <= STOP; received {name}={value!r}."
    )


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
