"""`kerasrwm.argument_types`: strict booleans, lists in comma or JSON form, errors naming the flag."""

import argparse

import pytest

from kerasrwm.argument_types import boolean
from kerasrwm.argument_types import key_value
from kerasrwm.argument_types import number_list
from kerasrwm.argument_types import option_value


def parser():
    parser = argparse.ArgumentParser(prog="kerasrwm", exit_on_error=False)
    parser.add_argument("--rotations", type=boolean)
    parser.add_argument("--k-test-sweep", type=number_list(int))
    parser.add_argument("--fractions", type=number_list(float))
    parser.add_argument("--data-option", type=key_value("--data-option"), action="append", default=[])
    return parser


@pytest.mark.parametrize("text, value", [("true", True), ("True", True), ("false", False), ("FALSE", False)])
def test_booleans_are_true_or_false_spellings(text, value):
    assert parser().parse_args(["--rotations", text]).rotations is value


@pytest.mark.parametrize("text", ["no", "yes", "1", "0", "", "on", "tru"])
def test_any_other_boolean_spelling_is_refused_naming_the_flag(text):
    with pytest.raises(
        argparse.ArgumentError, match=f"argument --rotations: expected true or false; received {text!r}"
    ):
        parser().parse_args(["--rotations", text])


@pytest.mark.parametrize("text", ["1,5,10", "1, 5, 10", "1,5,10,", "[1, 5, 10]", " [1,5,10] "])
def test_lists_take_the_comma_form_and_json(text):
    assert parser().parse_args(["--k-test-sweep", text]).k_test_sweep == [1, 5, 10]


def test_float_lists_take_both_forms():
    for text in ("0.6,0.2,0.2", "[0.6, 0.2, 0.2]"):
        assert parser().parse_args(["--fractions", text]).fractions == [0.6, 0.2, 0.2]


@pytest.mark.parametrize("text", ["5,x", "[5, x]", "[5, 2.5]", '["5"]', "[true]", "{}", "[1"])
def test_bad_lists_are_refused_naming_the_flag(text):
    with pytest.raises(argparse.ArgumentError, match=r"argument --k-test-sweep: expected .*ints.*received"):
        parser().parse_args(["--k-test-sweep", text])


@pytest.mark.parametrize(
    "text, value",
    [
        ("rotations=true", ("rotations", True)),
        ("rotations=no", ("rotations", "no")),  # refused by name where the option is checked
        ("split_fractions=0.6,0.2,0.2", ("split_fractions", [0.6, 0.2, 0.2])),
        ("split_fractions=[0.6,0.2,0.2]", ("split_fractions", [0.6, 0.2, 0.2])),
        ("image_size=16", ("image_size", 16)),
        ("split_scheme=vinyals", ("split_scheme", "vinyals")),
        ("path=a,b", ("path", "a,b")),
        ("note=x=y", ("note", "x=y")),
    ],
)
def test_key_value_options_take_json_then_comma_numbers_then_the_string(text, value):
    assert parser().parse_args(["--data-option", text]).data_option == [value]


@pytest.mark.parametrize("text", ["rotations", "=true", ""])
def test_a_key_value_without_key_or_sign_is_refused_naming_the_flag(text):
    with pytest.raises(argparse.ArgumentError, match=r"argument --data-option: --data-option must look like KEY=VALUE"):
        parser().parse_args(["--data-option", text])


def test_option_value_keeps_strings_that_are_not_numbers():
    assert option_value("1,x") == "1,x"
    assert option_value("") == ""
