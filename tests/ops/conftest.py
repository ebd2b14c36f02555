"""Fixtures of the op tests."""

from tests.ops.fake_cuda import isolated_discovery  # noqa: F401 (a fixture)
