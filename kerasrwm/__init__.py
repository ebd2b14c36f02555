"""kerasrwm: self-referential weight matrices and bootstrapped few-shot learning for Keras 3."""

from kerasrwm import ops
