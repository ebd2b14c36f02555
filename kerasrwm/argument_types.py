"""`argparse` value types shared by the commands and benchmarks (parsing only; the library checks values).

Each raises `argparse.ArgumentTypeError`, which argparse reports as one line naming the flag
(`argument --k-test-sweep: expected ...`).
"""

import argparse
import json

TRUE_SPELLINGS = ("true", "True", "TRUE")
FALSE_SPELLINGS = ("false", "False", "FALSE")


def boolean(text):
    """An argparse type: `true` or `false` (any case shown in `TRUE_SPELLINGS` / `FALSE_SPELLINGS`), nothing else."""
    if text in TRUE_SPELLINGS:
        return True
    if text in FALSE_SPELLINGS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; received {text!r}.")


def number_list(value_type):
    """An argparse type: `value_type` numbers, comma-separated (`1,5,10`) or as a JSON list (`[1, 5, 10]`).

    Empty items of the comma form are skipped (`1,,5` and a trailing comma are accepted).
    """

    def parse(text):
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except json.JSONDecodeError:
                items = None
            if not isinstance(items, list) or not all(_is_number(item, value_type) for item in items):
                raise argparse.ArgumentTypeError(
                    f"expected a JSON list of {value_type.__name__}s or comma-separated {value_type.__name__}s; "
                    f"received {text!r}."
                )
            return [value_type(item) for item in items]
        try:
            return [value_type(item) for item in stripped.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {value_type.__name__}s (or a JSON list); received {text!r}."
            ) from None

    return parse


def _is_number(item, value_type):
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return False
    return value_type is float or float(item).is_integer()


def option_value(text):
    """A `KEY=VALUE` option's value: JSON when it parses (`true`, `3`, `[0.6, 0.2, 0.2]`, `{...}`),
    else numbers when it is a comma-separated list of them (`0.6,0.2,0.2`), else the string itself.

    Booleans are JSON's `true` / `false` only: `no` or `yes` stay strings, which the option's
    own check refuses by name.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        try:
            numbers = [json.loads(item) for item in text.split(",")]
        except json.JSONDecodeError:
            return text
        if all(_is_number(item, float) for item in numbers):
            return numbers
    return text


def key_value(flag):
    """An argparse type: `KEY=VALUE` as `(KEY, option_value(VALUE))`; errors name `flag`."""

    def parse(text):
        key, separator, value = text.partition("=")
        if not separator or not key:
            raise argparse.ArgumentTypeError(f"{flag} must look like KEY=VALUE; received {text!r}.")
        return key, option_value(value)

    return parse
