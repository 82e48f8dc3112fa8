"""tiermem: tiered video memorability prediction (M3-S, Dumont et al., CVPR 2023, and beyond)."""

__version__ = "0.1.0"
