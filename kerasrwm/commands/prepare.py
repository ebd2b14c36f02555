"""`kerasrwm prepare DATASET --source PATH --output PATH`: a standard few-shot benchmark from a local copy."""

from kerasrwm.commands.common import progress_verbosity
from kerasrwm.data.benchmarks import BENCHMARKS
from kerasrwm.data.benchmarks import prepare_dataset


def add_arguments(parser):
    parser.add_argument("dataset", choices=sorted(BENCHMARKS), help="the benchmark to build")
    parser.add_argument(
        "--source",
        required=True,
        help="ImageNet: the ILSVRC-2012 training folder or ILSVRC2012_img_train.tar; CIFAR: cifar-100-python.tar.gz, "
        "its folder, or tfds:cifar100",
    )
    parser.add_argument("--output", required=True, help="folder to write (rerun the same command to continue)")
    parser.add_argument(
        "--split-lists",
        help="folder of train / val / test lists to use instead of the published ones shipped with kerasrwm",
    )


def run(args):
    manifest = prepare_dataset(
        args.dataset, args.source, args.output, split_lists=args.split_lists, verbose=progress_verbosity()
    )
    counts = ", ".join(
        f"{split} {c['classes']} classes / {c['images']} images" for split, c in manifest["splits"].items()
    )
    print(f"{manifest['dataset']}: {counts}. Train with --data {manifest['load_source']}")
