"""The learning-rate schedules a run can name (``--lr-schedule``), known without Keras.

``models.train.config`` offers them as the flag's choices before TensorFlow loads;
``models.train.schedule`` computes them. One tuple, so the two cannot drift apart.
"""

from __future__ import annotations

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "poly")
