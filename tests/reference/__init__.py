"""Independent NumPy references used by the tests (written from the spec, not the TF code)."""
