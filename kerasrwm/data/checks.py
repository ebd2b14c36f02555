"""Argument checks shared by the data modules."""

import numbers


def check_integer(name, value, minimum):
    """Returns `value` as an int, or raises a `ValueError` naming `name` if it is not an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {name}={value!r}.")
    return int(value)
