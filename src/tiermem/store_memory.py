"""A feature store held in memory, for a call whose features are not to be kept.

`tiermem.extraction.extract_videos` extracts into one when given it as `out`: the rows go from
the workers' outcomes to this process's memory, the fitted tiers' states (given by the caller)
travel to the workers as data, and nothing is written to disk. `predict` uses one when no cache
is asked for, so scoring a video does not write its features to a temporary Parquet table and
read them back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiermem.blocks import Block
from tiermem.errors import DataMismatchError, first_few
from tiermem.store import FeatureRow, SavedState, facts_json


class MemoryStore:
    """Rows and fitted states of one run, by tier; the interface of `tiermem.store.FeatureStore`
    that an extraction uses, with nothing cached between runs."""

    #: No directory: workers receive the fitted states as data.
    root: Path | None = None

    def __init__(self) -> None:
        self.rows: dict[str, list[FeatureRow]] = {}
        self.feature_names: dict[str, list[str]] = {}
        self._states: dict[str, SavedState] = {}

    # -- what an extraction run asks of a store --------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        yield  # one run owns it

    def unreadable_table(self, tier: str) -> str | None:
        return None

    def cached(self, tier: str, video_id: str, content_hash: str, config_hash: str) -> bool:
        return False

    def load_state(self, tier: str) -> SavedState | None:
        return self._states.get(tier)

    def save_state(self, tier: str, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self._states[tier] = SavedState(tier=tier, state=state, config=dict(config or {}))

    def write(self, tier: str, rows: Sequence[FeatureRow], feature_names: Sequence[str]) -> None:
        self.feature_names[tier] = list(feature_names)
        self.rows.setdefault(tier, []).extend(rows)

    @contextlib.contextmanager
    def writer(self, tier: str, feature_names: Sequence[str], *_: Any) -> Iterator["MemoryStore.Writer"]:
        self.feature_names[tier] = list(feature_names)
        yield MemoryStore.Writer(self.rows.setdefault(tier, []))

    class Writer:
        """Takes a tier's rows as `tiermem.store.TableWriter` does, into memory."""

        def __init__(self, rows: list[FeatureRow]) -> None:
            self._rows = rows

        def add(self, row: FeatureRow) -> None:
            self._rows.append(row)

    # -- what the caller reads back ------------------------------------------------------------
    def block(self, tier: str) -> Block:
        """The tier's features of the videos extracted, as a block (no row for a failed video)."""
        rows = self.rows.get(tier)
        if not rows:
            raise DataMismatchError(f"no {tier} features were extracted (every video failed?)")
        return Block(
            name=tier,
            ids=np.array([r.video_id for r in rows]),
            feature_names=self.feature_names[tier],
            values=np.stack([r.values for r in rows]).astype(np.float32),
            source=f"the {tier} features of {first_few([r.video_id for r in rows], 3)}",
        )

    def facts(self, tier: str) -> dict[str, dict[str, Any]]:
        """Each extracted video's facts from the tier, by video id, as a store on disk gives them back."""
        return {r.video_id: json.loads(facts_json(r.facts)) for r in self.rows.get(tier, [])}


__all__ = ["MemoryStore"]
