"""The SRWM recurrence as functions: `srwm` with a loop and a fused implementation."""

from kerasrwm.ops.srwm import IMPLEMENTATIONS
from kerasrwm.ops.srwm import portable_graphs
from kerasrwm.ops.srwm import resolve_implementation
from kerasrwm.ops.srwm import srwm
