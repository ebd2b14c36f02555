"""Sources of labelled images with a fixed class split: arrays / `.npz`, image folders, TFDS, synthetic."""
