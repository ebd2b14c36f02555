"""Central finite-difference gradients for checking analytic gradients in float64."""

import numpy as np


def numerical_gradient(function, arrays, epsilon=1e-6):
    """Central differences of a scalar function with respect to each of several arrays.

    Args:
        function: callable taking a list of float64 arrays and returning a Python float.
        arrays: list of float64 arrays; each is perturbed entry by entry (copies are used).
        epsilon: step size.

    Returns:
        A list of arrays with the same shapes as `arrays`: d function / d array.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    gradients = []
    for array in arrays:
        gradient = np.zeros_like(array)
        flat = array.reshape(-1)
        for index in range(flat.size):
            original = flat[index]
            flat[index] = original + epsilon
            plus = function(arrays)
            flat[index] = original - epsilon
            minus = function(arrays)
            flat[index] = original
            gradient.reshape(-1)[index] = (plus - minus) / (2.0 * epsilon)
        gradients.append(gradient)
    return gradients
