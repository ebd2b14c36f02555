"""Float64 NumPy LSTM, the standard cell of the authors' LSTM baseline.

Gate order i, f, g, o along the 4·units axis (Keras's and PyTorch's); row-vector convention
`z = x @ kernel + h @ recurrent_kernel + bias`.
"""

import numpy as np


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm(x, kernel, recurrent_kernel, bias, h, c):
    """Runs the cell over `x [batch, length, features]` from `(h, c)`, each `[batch, units]`.

    Returns:
        `(hidden [batch, length, units], (h, c))`: every step's h and the final state.
    """
    units = h.shape[-1]
    outputs = []
    for x_t in np.moveaxis(x, 1, 0):
        z = x_t @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = (z[:, n * units : (n + 1) * units] for n in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), (h, c)
