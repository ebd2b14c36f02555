"""Argument checks shared across the package; each raises `ValueError` naming the argument."""

import math
import numbers

import numpy as np


def check_integer(name, value, minimum=1):
    """Returns `value` as an int if it is an integer (Python or NumPy) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {name}={value!r}.")
    return int(value)


def rate(name, value):
    """Returns `value` as a float if it lies in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1); received {name}={value!r}.")
    return float(value)


def check_number(name, value, minimum=0.0, exclusive=False):
    """Returns `value` as a float if it is a finite real >= `minimum` (> `minimum` if `exclusive`)."""
    bound = f"> {minimum}" if exclusive else f">= {minimum}"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or (value <= minimum if exclusive else value < minimum)
    ):
        raise ValueError(f"`{name}` must be a finite number {bound}; received {name}={value!r}.")
    return float(value)


def check_boolean(name, value):
    """Returns `value` if it is a bool (Python or NumPy); a string such as `"no"` is refused, not taken as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be true or false; received {name}={value!r}.")
    return bool(value)


def check_choice(name, value, choices):
    """Returns `value` if it is one of `choices`: equal to one and of its type (a NumPy string is a string;
    a list or an array is never a string, and unhashable values are refused, not raised on)."""
    if not any(isinstance(value, type(choice)) and value == choice for choice in choices):
        raise ValueError(f"`{name}` must be one of {tuple(choices)}; received {name}={value!r}.")
    return value


def check_integer_list(name, value, minimum=1):
    """Returns `value` as a list of ints if it is a list (or tuple) of integers >= `minimum`; it may be empty."""
    if not isinstance(value, (list, tuple)) or any(
        isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < minimum for item in value
    ):
        raise ValueError(f"`{name}` must be a list of integers >= {minimum}; received {name}={value!r}.")
    return [int(item) for item in value]
