"""Figures and frames embedded in the report as base64 (the HTML file stands alone)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np


def png_base64(fig: Any) -> str:
    """A matplotlib figure as base64 PNG; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def jpeg_base64(image: np.ndarray) -> str:
    """An RGB uint8 image as base64 JPEG (quality 85)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


__all__ = ["jpeg_base64", "png_base64"]
