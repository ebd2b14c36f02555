"""`argparse` value types shared by the commands and benchmarks (parsing only; the library checks values)."""

import argparse


def number_list(value_type):
    """An argparse type: `value_type` numbers separated by commas (empty items are skipped)."""

    def parse(text):
        try:
            return [value_type(item) for item in text.split(",") if item]
        except ValueError as error:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {value_type.__name__}s; received {text!r}."
            ) from error

    return parse
