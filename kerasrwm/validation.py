"""Argument checks shared across the package; each raises `ValueError` naming the argument."""


def positive_int(name, value, minimum=1):
    """Returns `value` if it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received: {value!r}.")
    return value


def rate(name, value):
    """Returns `value` as a float if it lies in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1); received: {value!r}.")
    return float(value)
