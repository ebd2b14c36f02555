"""Independent NumPy references of the recurrences and layers, written from the spec, not from the TF code.

Used by the tests (`tests/`) and by the kernel tools (`tf_ops/`); it imports neither, nor TensorFlow,
so a tool needs only NumPy and this folder on its path.
"""
