"""The ensemble head: several heads fitted on the same videos, their scores averaged.

Heads that err differently average into a better ranking than either: on the realbench
validation splits, kernel ridge averaged with M3-S beat both on Memento10k captions and on
VideoMem titles + COCO-80 (`benchmarks/text_models.py`). Members are named heads with their
own parameters; the ensemble saves them side by side in one head file (each member's arrays
under ``member.<name>.``), so it loads like any head, without pickle::

    head = get_head("ensemble", members=["kernel-ridge", "m3s"], params={"m3s": {"dropout": 0.5}})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tiermem.errors import TiermemError
from tiermem.model.base import Head, StateError
from tiermem.model.registry import get_head, get_head_class, list_heads, register_head

#: The members of an ensemble built without naming them: the pair that won on validation.
DEFAULT_MEMBERS = ("kernel-ridge", "m3s")
#: Heads that cannot be members: an ensemble inside an ensemble, or a head that chooses its kind.
NOT_MEMBERS = ("ensemble", "auto")


@register_head
class EnsembleHead(Head):
    """The mean score of `members` (head names), each built with ``params[name]`` and fitted on
    the same training videos."""

    name = "ensemble"
    #: Where an M3-S member trains ("cpu" or "cuda"); a runtime choice, not a saved parameter.
    device: str = "cpu"

    def __init__(
        self,
        members: Sequence[str] = DEFAULT_MEMBERS,
        params: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.members = [str(m) for m in ([members] if isinstance(members, str) else members)]
        self.params = {str(k): dict(v) for k, v in dict(params or {}).items()}

    def get_params(self) -> dict[str, Any]:
        return {"members": list(self.members), "params": {k: dict(v) for k, v in self.params.items()}}

    def check_params(self) -> None:
        if len(self.members) < 2:
            raise TiermemError(f"ensemble head: needs at least 2 members, got {self.members}")
        if len(set(self.members)) != len(self.members):
            raise TiermemError(
                f"ensemble head: a member is named twice in {self.members} (an m3s head averages seeds itself)"
            )
        for member in self.members:
            if member in NOT_MEMBERS or member not in list_heads():
                allowed = [h for h in list_heads() if h not in NOT_MEMBERS]
                raise TiermemError(
                    f"ensemble head: {member!r} cannot be a member; members are {', '.join(allowed)}"
                )
        stray = sorted(set(self.params) - set(self.members))
        if stray:
            raise TiermemError(
                f"ensemble head: parameters given for {', '.join(stray)}, which is not a member"
            )
        for member in self.members:
            self._member(member).check_params()

    def _member(self, name: str) -> Head:
        head = get_head(name, **self.params.get(name, {}))
        if hasattr(head, "device"):
            head.device = self.device  # type: ignore[attr-defined]
        return head

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None, watch=None) -> "EnsembleHead":
        """Fit every member on (X, y); members trained by epochs tell `progress` of each."""
        X, _ = self._check_fit_inputs(X, y, layout)
        y = np.asarray(y, dtype=np.float64).ravel()
        self.heads_ = [
            self._member(name).fit(X, y, layout=self.layout_, progress=progress) for name in self.members
        ]
        return self

    def member_scores(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Each member's scores of X, in the target's units."""
        X = self._check_predict_input(X)
        return {name: head.predict(X) for name, head in zip(self.members, self.heads_)}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        # Members answer in the target's units; `predict` maps [0, 1] units back with this
        # head's scaling, fitted on the same targets as theirs.
        mean = np.mean([head.predict(X) for head in self.heads_], axis=0)
        return self.target_scaling_.transform(mean)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for name, head in zip(self.members, self.heads_):
            state.update({f"member.{name}.{k}": v for k, v in head.state_dict().items()})
        fitted = {n: h.get_params() for n, h in zip(self.members, self.heads_)}
        return {**state, "ensemble.params": fitted, **self._common_state()}

    def load_state_dict(self, state: dict[str, Any]) -> "EnsembleHead":
        self._load_common(state)
        fitted = state.get("ensemble.params")
        if not isinstance(fitted, dict) or sorted(fitted) != sorted(self.members):
            raise StateError("ensemble.params", f"must hold the parameters of {', '.join(self.members)}")
        self.heads_ = []
        for name in self.members:
            prefix = f"member.{name}."
            inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            try:
                self.heads_.append(get_head_class(name)(**dict(fitted[name])).load_state_dict(inner))
            except StateError as exc:
                raise StateError(prefix + exc.key, str(exc).split(": ", 1)[-1]) from None
        return self


__all__ = ["DEFAULT_MEMBERS", "EnsembleHead"]
