"""Text memorability models: how memorable a *description* of a video is, learnt from real labels.

Human captions and titles carry much of what makes a video memorable (SemanticMemNet, Newman
et al. 2020). A text model scores descriptions: a script line, a brief, a title, or the captions
of a finished video. Two ship inside the package, trained by `scripts/train_text_models.py` on
real MediaEval labels (`../shared/realbench`):

- ``memento10k-captions``: Memento10k short-term memorability from its five human captions
  per video (7000 videos);
- ``videomem-titles``: VideoMem short-term memorability from its stock-footage titles (6000).

    >>> model = tiermem.load("memento10k-captions")
    >>> model.predict_text(["a man juggles fire on a beach", "a grey office corridor"])[["text", "score", "percentile"]].round(2)
                                text  score  percentile
    0  a man juggles fire on a beach   0.87       86.30
    1         a grey office corridor   0.71        8.31

A caption is embedded by the packaged all-MiniLM-L6-v2 sentence encoder (unit vectors), and
scored by kernel ridge (`CaptionKernelRidge`), optionally averaged with an MLP ensemble on the
same embeddings. A video's score is the mean of its captions' scores. The score estimates the
memorability of the video the description was written about; it is a property of the text,
not a measurement of any video.

Saved as a directory: ``model.json`` (schema version, encoder identity, parameters, card) and
``weights.safetensors`` (landmarks, coefficients, the training videos' sorted predictions for
percentiles), plus ``mlp/`` (a head saved as `tiermem train` saves one) when it has an MLP.
Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.models.caption_kernel import CaptionKernelRidge, mean_by_owner
from tiermem.run import ProgressCallback, Run

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TEXT_MODEL_SCHEMA = 1
#: Words (runs of letters or digits) a description needs to be scored.
MIN_WORDS = 2
WORD = re.compile(r"[^\W_]+")
TOO_LITTLE = "too little text to score (fewer than 2 words)"
META_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"


class TextModel:
    """Scores descriptions. Built by `fit` (training script) or read by `load` (shipped models)."""

    kind = "text"
    #: Where caption embeddings are cached (`tiermem.tiers.text.CaptionCache`); a runtime
    #: choice, not saved. None: embed every time.
    cache_dir: Path | None = None

    def __init__(
        self,
        name: str,
        kernel: CaptionKernelRidge,
        mlp: dict[str, Any] | None = None,
        card: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.kernel = kernel
        self.mlp = dict(mlp) if mlp is not None else None  # M3-S head parameters, or no MLP
        self.card_info = dict(card or {})

    # -- learning ------------------------------------------------------------------------------
    def fit(
        self, captions: Sequence[Sequence[str]], y: np.ndarray, *, progress: ProgressCallback | None = None
    ) -> "TextModel":
        """Learn from one list of captions and one score per video."""
        embeddings, owner = self._embed(captions, progress=progress)
        y = np.asarray(y, dtype=np.float64)
        self.kernel.fit(embeddings, owner, y)
        parts = [self.kernel.predict_captions(embeddings)]
        if self.mlp is not None:
            from tiermem.model.registry import get_head

            self.mlp_ = get_head("m3s", **self.mlp).fit(embeddings, y[owner])
            parts.append(self.mlp_.predict(embeddings))
        self.encoder_ = _encoder_identity()
        per_video = mean_by_owner(np.mean(parts, axis=0)[:, None], owner, len(y))[:, 0]
        self.train_predictions_ = np.sort(np.clip(per_video, 0.0, 1.0)).astype(np.float32)
        return self

    # -- scoring -------------------------------------------------------------------------------
    def score_captions(
        self,
        captions: Sequence[Sequence[str]],
        *,
        progress: ProgressCallback | None = None,
        device: str = "cpu",
    ) -> np.ndarray:
        """One score per video: the mean of its captions' scores, in [0, 1], the captions
        embedded on `device`."""
        embeddings, owner = self._embed(captions, progress=progress, device=device)
        per_caption = self._score_embeddings(embeddings)
        return np.clip(mean_by_owner(per_caption[:, None], owner, len(captions))[:, 0], 0.0, 1.0)

    def predict_text(self, texts: str | Sequence[str]) -> pd.DataFrame:
        """Each description scored alone: columns text, score, percentile (among the training
        videos' predicted scores), chunks and note.

        The encoder reads at most 256 tokens (about 1.5 kB of English): a longer text is cut into
        consecutive chunks that fit, each scored, and its score is their mean (`chunks` says how
        many; a video's captions are averaged the same way). A text of fewer than 2 words gets
        no score (NaN) and the note "too little text to score": emoji or a single word do not
        describe a video.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        scorable = [i for i, t in enumerate(texts) if len(WORD.findall(t)) >= MIN_WORDS]
        pieces = text_chunks([texts[i] for i in scorable], self.encoder_window())
        scores = np.full(len(texts), np.nan)
        percentiles = np.full(len(texts), np.nan)
        chunks = np.zeros(len(texts), dtype=int)
        if scorable:
            scores[scorable] = self.score_captions(pieces)
            percentiles[scorable] = self.percentile(scores[scorable])
            chunks[scorable] = [len(p) for p in pieces]
        notes = [
            ""
            if n == 1
            else TOO_LITTLE
            if n == 0
            else f"the mean of {n} chunks (the encoder reads 256 tokens at a time)"
            for n in chunks
        ]
        return pd.DataFrame(
            {"text": texts, "score": scores, "percentile": percentiles, "chunks": chunks, "note": notes}
        )

    def encoder_window(self) -> Any:
        """The sentence encoder (its tokenizer and `max_seq_length` cut long texts into chunks)."""
        from tiermem.tiers.text import load_text_model

        return load_text_model()

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        from tiermem.metrics import midrank_percentile

        return midrank_percentile(
            self.train_predictions_.astype(np.float64), np.asarray(scores, dtype=np.float64)
        )

    def predict(
        self,
        videos: Any,
        *,
        captions: dict[str, list[str]] | None = None,
        run: Run | None = None,
        missing: Literal["raise", "keep"] = "raise",
        cache: Any = None,
        timeline: bool | None = None,
        window: float | None = None,
        stride: float | None = None,
    ):  # -> tiermem.predictions.Predictions
        """Score videos by their captions (`captions`: video id -> captions), embedded on `run`'s
        device; no frame is read. A video without captions goes to `failed` (or raises, with
        ``missing="raise"``). What only frames allow is refused in one line: a timeline
        (`timeline=True`, `window`, `stride`) and a frame-feature `cache`."""
        asked = [
            name
            for name, value in (
                ("timeline", timeline or None),
                ("window", window),
                ("stride", stride),
                ("cache", cache),
            )
            if value is not None
        ]
        if asked:
            raise TiermemError(
                f"model {self.name} scores captions, not frames: {', '.join(asked)} "
                f"{'does' if len(asked) == 1 else 'do'} not apply"
            )
        from tiermem.inputs import find_videos, video_ids
        from tiermem.predictions import Predictions

        paths = find_videos(videos, missing=missing)
        ids = video_ids(paths) if paths else []
        have = [i for i, v in enumerate(ids) if (captions or {}).get(v)]
        failed = [
            (str(paths[i]), "no caption for this video (give them with --captions / captions=)")
            for i in sorted(set(range(len(paths))) - set(have))
        ]
        if failed and missing == "raise":
            raise TiermemError(f"{failed[0][0]}: {failed[0][1]}")
        if not have:
            return Predictions.empty(failed)
        scores = self.score_captions([captions[ids[i]] for i in have], device=Run.of(run).network_device)  # type: ignore[index]
        table = pd.DataFrame(
            {
                "video_id": [ids[i] for i in have],
                "path": [str(paths[i]) for i in have],
                "score": scores,
                "percentile": self.percentile(scores),
            }
        )
        facts = [{"text": {"n_captions": len(captions[ids[i]])}} for i in have]  # type: ignore[index]
        return Predictions(table, [], facts, None, failed)

    @property
    def description(self) -> str:
        return f"description memorability (model {self.name}; scores the text, not the video)"

    def card(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "text", **self.card_info}

    # -- saving ----------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        from safetensors.numpy import save_file

        from tiermem.atomic import write_dir_atomic

        def write(tmp: Path) -> None:
            arrays = {**self.kernel.state(), "train_predictions": self.train_predictions_}
            save_file(arrays, str(tmp / WEIGHTS_FILE))
            meta = {
                "schema_version": TEXT_MODEL_SCHEMA,
                "kind": self.kind,
                "name": self.name,
                "encoder": self.encoder_,
                "kernel": self.kernel.get_params(),
                "mlp": self.mlp,
                "card": self.card_info,
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
            if self.mlp is not None:
                self.mlp_.save(tmp / "mlp")

        return write_dir_atomic(Path(directory), write)

    @classmethod
    def load(cls, directory: "str | os.PathLike[str] | Traversable") -> "TextModel":
        """Read a saved text model: a directory, or package data (an `importlib.resources` path)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load as load_arrays

        d = directory if hasattr(directory, "read_bytes") else Path(directory)
        if isinstance(d, Path):
            from tiermem.atomic import before_loading

            before_loading(d, META_FILE)
        meta_path = d / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
            if (
                not isinstance(meta, dict)
                or meta.get("schema_version") != TEXT_MODEL_SCHEMA
                or meta.get("kind") != "text"
            ):
                raise DataMismatchError(f"{meta_path}: not a text model of schema {TEXT_MODEL_SCHEMA}")
            arrays = load_arrays((d / WEIGHTS_FILE).read_bytes())
            model = cls(
                str(meta["name"]), CaptionKernelRidge(**meta["kernel"]), meta.get("mlp"), meta.get("card")
            )
            model.kernel.load_state(arrays, str(d / WEIGHTS_FILE))
            model.train_predictions_ = np.sort(arrays["train_predictions"].astype(np.float32))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise DataMismatchError(f"{d}: damaged text model ({type(exc).__name__}: {exc})") from None
        if model.mlp is not None:
            from tiermem.model.base import load_head

            model.mlp_ = load_head(d / "mlp")
        model.encoder_ = str(meta["encoder"])
        installed = _encoder_identity()
        if model.encoder_ != installed:
            raise TiermemError(
                f"{d}: trained on caption embeddings of {model.encoder_}, but {installed} is installed"
            )
        return model

    # -- internals -------------------------------------------------------------------------------
    def _embed(
        self, captions: Sequence[Sequence[str]], *, progress: ProgressCallback | None, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        from tiermem.tiers.text import TextTier, as_caption_list

        lists = [as_caption_list(c, f"description #{i}") for i, c in enumerate(captions)]
        flat = [c for caps in lists for c in caps]
        owner = np.repeat(np.arange(len(lists)), [len(c) for c in lists])
        return TextTier(cache_dir=self.cache_dir, on_progress=progress).on(device).embed_captions(flat), owner

    def _score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        parts = [self.kernel.predict_captions(embeddings)]
        if self.mlp is not None:
            parts.append(self.mlp_.predict(embeddings))
        return np.mean(parts, axis=0)


def _encoder_identity() -> str:
    from tiermem.tiers.text import DEFAULT_MODEL, resolve_text_model

    return resolve_text_model(DEFAULT_MODEL)[1]


def text_chunks(texts: Sequence[str], encoder: Any) -> list[list[str]]:
    """Each text as consecutive pieces of at most the encoder's window of tokens (its special
    tokens left room for), cut at token boundaries; a text that fits is one piece, unchanged."""
    limit = int(encoder.max_seq_length) - 2  # [CLS] and [SEP]
    out = []
    for text in texts:
        spans = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
            "offset_mapping"
        ]
        if len(spans) <= limit:
            out.append([text])
            continue
        out.append(
            [
                text[spans[k][0] : spans[min(k + limit, len(spans)) - 1][1]]
                for k in range(0, len(spans), limit)
            ]
        )
    return out


__all__ = ["MIN_WORDS", "TEXT_MODEL_SCHEMA", "TextModel", "text_chunks"]
