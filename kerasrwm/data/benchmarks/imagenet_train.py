"""Reading the ILSVRC-2012 training set from a folder or from its tar, one class at a time.

Three layouts are read, each with one entry per class synset (`n01440764`):

- a folder of class folders of JPEG files (`train/n01440764/n01440764_10026.JPEG`);
- a folder of per-class tars (`n01440764.tar`), what `ILSVRC2012_img_train.tar` unpacks to;
- `ILSVRC2012_img_train.tar` itself, a tar of per-class tars. It is read in place (no
  unpacking): the outer tar is indexed once, then a class's tar is read into memory.
"""

import io
import os
import re
import tarfile

from kerasrwm.data.benchmarks.split_lists import SYNSET_PATTERN

IMAGE_NAME = re.compile(r"(n\d{8})_(\d+)\.jpe?g", re.IGNORECASE)
CLASS_TAR = re.compile(r"(?:.*/)?(n\d{8})\.tar")


def image_number(name):
    """The file number of an ILSVRC-2012 training image name (`n01440764_10026.JPEG` -> 10026)."""
    match = IMAGE_NAME.fullmatch(os.path.basename(name))
    if match is None:
        raise ValueError(f"{name!r} is not an ILSVRC-2012 training image name (like n01440764_10026.JPEG).")
    return int(match.group(2))


def _not_training_set(path, entries):
    """The one-line error for a `source` that is not the ILSVRC-2012 training set, naming what it holds."""
    shown = ", ".join(repr(e) for e in sorted(entries)[:3]) or "nothing"
    if any("ILSVRC2012_val_" in e or "ILSVRC2012_test_" in e for e in entries):
        what = "it holds the ILSVRC-2012 validation or test images, not the training set"
    elif any("cifar" in e.lower() or e in ("data_batch_1", "meta", "train") for e in entries):
        what = "it holds CIFAR data, not ImageNet"
    else:
        what = "it holds no entries named by synset (like n01440764/ or n01440764.tar)"
    return ValueError(
        f"`source`={str(path)!r} must be the ILSVRC-2012 training set (a folder of class folders or class "
        f"tars, or ILSVRC2012_img_train.tar); {what}: {shown}."
    )


class ImageNetTrain:
    """The ILSVRC-2012 training images at `path`, per class.

    Args:
        path: a folder of class folders, a folder of class tars, or
            `ILSVRC2012_img_train.tar`.

    Attributes:
        synsets: the class synsets present.
        layout: `"class folders"`, `"class tars"` or `"tar of class tars"`.
    """

    def __init__(self, path):
        self.path = str(path)
        self._outer = None
        if os.path.isdir(self.path):
            entries = [e.name for e in os.scandir(self.path) if not e.name.startswith(".")]
            folders = {e for e in entries if SYNSET_PATTERN.fullmatch(e) and os.path.isdir(os.path.join(self.path, e))}
            tars = {m.group(1): e for e in entries if (m := CLASS_TAR.fullmatch(e))}
            if folders:
                self.layout, self._class_entries = "class folders", {s: s for s in folders}
            elif tars:
                self.layout, self._class_entries = "class tars", tars
            else:
                raise _not_training_set(self.path, entries)
        elif os.path.isfile(self.path):
            try:
                self._outer = tarfile.open(self.path)
            except tarfile.ReadError:
                raise ValueError(
                    f"`source`={self.path!r} is neither a folder nor a tar archive; give the ILSVRC-2012 training "
                    "folder or ILSVRC2012_img_train.tar."
                ) from None
            members = self._outer.getmembers()
            tars = {
                m.group(1): member for member in members if member.isfile() and (m := CLASS_TAR.fullmatch(member.name))
            }
            if not tars:
                names = [member.name for member in members]
                self._outer.close()
                raise _not_training_set(self.path, names)
            self.layout, self._class_entries = "tar of class tars", tars
        else:
            raise ValueError(f"`source`={self.path!r} does not exist.")
        self.synsets = frozenset(self._class_entries)
        self._open_class = (None, None)

    def close(self):
        if self._outer is not None:
            self._outer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()

    def _class_tar(self, synset):
        entry = self._class_entries[synset]
        if self.layout == "class tars":
            with open(os.path.join(self.path, entry), "rb") as file:
                data = file.read()
        else:
            data = self._outer.extractfile(entry).read()
        archive = tarfile.open(fileobj=io.BytesIO(data))
        return {os.path.basename(m.name): m for m in archive.getmembers() if m.isfile()}, archive

    def _class(self, synset):
        """`{image name: member}` of one class; the last class opened is kept open."""
        if self._open_class[0] != synset:
            if self.layout == "class folders":
                folder = os.path.join(self.path, synset)
                self._open_class = (synset, ({name: None for name in os.listdir(folder)}, None))
            else:
                self._open_class = (synset, self._class_tar(synset))
        return self._open_class[1]

    def image_names(self, synset):
        """The JPEG names of class `synset`, in the numeric order of their file numbers."""
        names = [name for name in self._class(synset)[0] if IMAGE_NAME.fullmatch(name)]
        return sorted(names, key=image_number)

    def read(self, synset, name):
        """The bytes of image `name` of class `synset`."""
        members, archive = self._class(synset)
        if archive is None:
            with open(os.path.join(self.path, synset, name), "rb") as file:
                return file.read()
        return archive.extractfile(members[name]).read()
