"""The `kerasrwm` command line: `kerasrwm demo | train | evaluate | tune | export | bench ...`."""

import argparse
import importlib
import json
import os
import sys

from kerasrwm import runtime

VERBOSE_VARIABLE = "KERASRWM_VERBOSE"

# (command path, module with `add_arguments(parser)` and `run(args)`, help)
COMMANDS = (
    (
        ("demo",),
        "kerasrwm.commands.demo",
        "train a no-bootstrap and a bootstrapped learner on synthetic data and compare",
    ),
    (
        ("train",),
        "kerasrwm.commands.train",
        "train (or resume) a few-shot learner: bootstrapped episodes or delayed labels (--protocol)",
    ),
    (("evaluate",), "kerasrwm.commands.evaluate", "K_test sweep of trained runs on fixed test episodes"),
    (
        ("tune",),
        "kerasrwm.commands.tune",
        "KerasTuner grid search over beta2 and K' on validation student accuracy; rerun to resume",
    ),
    (
        ("export",),
        "kerasrwm.commands.export",
        "write a portable SavedModel (adapt_and_predict, or predict_sequence for delayed-label runs)",
    ),
    (("prepare",), "kerasrwm.commands.prepare", "build a few-shot benchmark from local ImageNet or CIFAR-100"),
    (("build-ops",), "kerasrwm.ops.build", "build the fused SRWM op library now and print where it is"),
    (("bench", "op"), "kerasrwm.benchmarks.op", "time forward+backward of the SRWM implementations"),
    (("bench", "data"), "kerasrwm.benchmarks.data", "episodes/s of the in-graph sampler vs a NumPy sampler"),
    (
        ("bench", "precision"),
        "kerasrwm.benchmarks.precision",
        "error of the fused op's float32 gradients against float64",
    ),
    (("bench", "step"), "kerasrwm.benchmarks.step", "time the bootstrapped training step against its alternatives"),
    (
        ("bench", "train"),
        "kerasrwm.benchmarks.train",
        "time a training step, its parts and its distance to the FLOP bound",
    ),
)


def _format_figures(figures, indent=""):
    lines = []
    for key, value in figures.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.extend(_format_figures(value, indent + "  "))
        elif isinstance(value, float):
            lines.append(f"{indent}{key}: {value:.4g}")
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines


def _selected_command(argv):
    """The command path that `argv` names (its leading words), or None when it names none."""
    words = []
    for argument in argv:
        if argument == "--verbose":
            continue
        if argument.startswith("-"):
            break
        words.append(argument)
    return next((path for path, _, _ in COMMANDS if tuple(words[: len(path)]) == path), None)


def _import_command(module_name, verbose):
    """Imports a command's module, which loads TensorFlow: quietly unless `verbose`."""
    if verbose:
        return importlib.import_module(module_name)
    with runtime.native_stderr_silenced():
        return importlib.import_module(module_name)


def build_parser(argv=None, verbose=True):
    """The parser of every command; with `argv`, only the named command's module is imported.

    Importing a command's module loads TensorFlow, so `kerasrwm --help` imports none of them.
    Unless `verbose`, the lines TensorFlow's runtime prints while it loads are not shown.
    """
    selected = None if argv is None else _selected_command(argv)
    parser = argparse.ArgumentParser(prog="kerasrwm", description=__doc__)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"show TensorFlow's own log lines (also with {VERBOSE_VARIABLE}=1)",
    )
    groups = {(): parser.add_subparsers(dest="command", required=True, metavar="COMMAND")}
    for path, module_name, help_text in COMMANDS:
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                group_parser = groups[path[: depth - 1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = group_parser.add_subparsers(
                    dest=f"{prefix[-1]}_command", required=True, metavar="COMMAND"
                )
        command_parser = groups[path[:-1]].add_parser(path[-1], help=help_text, description=help_text)
        command_parser.set_defaults(module_name=module_name)
        if argv is not None and path != selected:
            continue
        module = _import_command(module_name, verbose)
        module.add_arguments(command_parser)
        if module_name.startswith("kerasrwm.benchmarks."):
            command_parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    leading_options = argv[: next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))]
    verbose = "--verbose" in leading_options or os.environ.get(VERBOSE_VARIABLE) == "1"
    if verbose:
        runtime.show_tensorflow_logs()
    args = build_parser(argv, verbose).parse_args(argv)
    try:
        result = importlib.import_module(args.module_name).run(args)
    except ValueError as error:
        print(f"kerasrwm: error: {error}", file=sys.stderr)
        return 2
    if args.module_name.startswith("kerasrwm.benchmarks."):
        if getattr(args, "json", False):
            print(json.dumps(result))
        else:
            print("\n".join(_format_figures(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
