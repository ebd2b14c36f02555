"""`load_source`: a `Source` from a short spec string such as `"npz:PATH"` or `"tfds:omniglot"`."""

from kerasrwm.data.sources.arrays import load_npz
from kerasrwm.data.sources.image_folder import load_image_folder
from kerasrwm.data.sources.synthetic import load_synthetic
from kerasrwm.data.sources.tfds import load_tfds

SCHEMES = {"npz": load_npz, "folder": load_image_folder, "tfds": load_tfds}


def load_source(spec_string, **options):
    """Loads a few-shot `Source` named by `spec_string`.

    Args:
        spec_string: one of
            - `"synthetic"`: the built-in procedural characters
              (`load_synthetic`; options `num_classes`, `images_per_class`,
              `image_size`, `channels`, `seed`, ...);
            - `"npz:PATH"`: a `.npz` file (`load_npz`; options
              `split_scheme="vinyals" | "background"`, `rotations`,
              `image_size`, ...);
            - `"folder:PATH"`: class subfolders of images
              (`load_image_folder`; options `image_size`, `color_mode`, ...);
            - `"tfds:NAME"`: a TFDS dataset (`load_tfds`; options `splits`,
              `data_dir`, `download`, `image_size`, `rotations`, ...).
        **options: options of that loader; all accept
            `drop_small_classes=True` to leave out classes too small for an
            episode instead of raising.

    Returns:
        A `Source`; `source.split("train")` is the training `ClassStore`.

    Example:

    >>> source = load_source("npz:omniglot_28.npz", split_scheme="vinyals", rotations=True)
    >>> train_store = source.split("train")
    """
    check_source_spec("spec_string", spec_string)
    if spec_string == "synthetic":
        scheme, loader, arguments = "synthetic", load_synthetic, ()
    else:
        scheme, _, argument = spec_string.partition(":")
        loader, arguments = SCHEMES[scheme], (argument,)
    try:
        return loader(*arguments, **options)
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        raise ValueError(f"Unknown data option for a {scheme!r} source: {error}; see `{loader.__name__}`.") from None


def check_source_spec(name, spec_string):
    """Returns `spec_string` if it names a source as `load_source` reads it; `ValueError` naming `name` if not.

    Only the form is checked (`"synthetic"` or `SCHEME:ARGUMENT` of a known scheme); nothing is read.
    """
    scheme, _, argument = str(spec_string).partition(":")
    if not isinstance(spec_string, str) or (spec_string != "synthetic" and (scheme not in SCHEMES or not argument)):
        raise ValueError(
            f"`{name}` must be 'synthetic', 'npz:PATH', 'folder:PATH' or 'tfds:NAME'; received {name}={spec_string!r}."
        )
    return spec_string
