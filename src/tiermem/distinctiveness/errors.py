"""The error of an estimator used before `fit`: a tiermem error (one line in the command line)
that scikit-learn code also recognises, so it lives apart from the light contract module."""

from sklearn.exceptions import NotFittedError as _SklearnNotFitted

from tiermem.errors import TiermemError


class NotFittedError(TiermemError, _SklearnNotFitted):
    """Used before `fit`: a tiermem error (one line in the CLI) that scikit-learn code also recognises."""


__all__ = ["NotFittedError"]
