"""Which device a benchmark ran on, in the words its report prints beside every figure.

A figure means little without its device: on a GPU machine (the ``gpu`` extra, a visible CUDA
device) ``bench train`` and ``bench predict`` run there and say so, on any other machine they
say ``CPU``, with the core count. TensorFlow is imported only when asked.
"""

from __future__ import annotations

import os


def device_name() -> str:
    """``"GPU: <name> (n)"`` when TensorFlow sees a GPU, else ``"CPU (<cores> cores)"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        except (RuntimeError, ValueError):
            name = "GPU"
        return f"GPU: {name}" + (f" (x{len(gpus)})" if len(gpus) > 1 else "")
    return f"CPU ({os.cpu_count()} cores)"
