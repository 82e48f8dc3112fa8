"""Fine-tune the MiniLM sentence encoder on caption memorability (used by text_models.py --finetune).

Each caption is a sample with its video's score. The encoder (mean pooling, unit norm, as
sentence-transformers pools it) feeds a linear layer started at the mean score; AdamW (encoder
lr 3e-5, head 1e-3, weight decay 0.01), one-cycle schedule with 10% warm-up, batch 32, MSE, 2
epochs, captions cut at 40 tokens, seed 0. A video's score is the mean of its captions'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def finetune_scorer(
    captions: Sequence[Sequence[str]],
    videos: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 2,
    lr: float = 3e-5,
    batch: int = 32,
) -> Callable[[np.ndarray], np.ndarray]:
    """Fine-tune on the captions of `videos` (indices into `captions` and `y`); returns a scorer
    of other video indices."""
    import torch
    from rich.progress import Progress
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    from tiermem.tiers.text import DEFAULT_MODEL, resolve_text_model

    torch.manual_seed(0)
    path = str(resolve_text_model(DEFAULT_MODEL)[0])
    tok, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    head = nn.Sequential(nn.Dropout(0.1), nn.Linear(encoder.config.hidden_size, 1))
    nn.init.zeros_(head[1].weight)
    nn.init.constant_(head[1].bias, float(y[videos].mean()))

    def forward(texts: list[str]) -> torch.Tensor:
        b = tok(texts, padding=True, truncation=True, max_length=40, return_tensors="pt")
        hidden = encoder(**b).last_hidden_state
        mask = b["attention_mask"].unsqueeze(-1).float()
        return head(nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)).squeeze(-1)

    texts = [c for v in videos for c in captions[v]]
    target = torch.tensor(np.concatenate([[y[v]] * len(captions[v]) for v in videos]), dtype=torch.float32)
    steps = epochs * (len(texts) // batch)
    opt = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": lr}, {"params": head.parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, 1e-3], total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("fine-tuning MiniLM", total=steps)
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            for s in range(0, len(order) - batch + 1, batch):
                idx = order[s : s + batch]
                loss = ((forward([texts[i] for i in idx]) - target[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.advance(task)
    print(f"  fine-tuned MiniLM: {steps} steps in {time.perf_counter() - start:.0f} s")
    encoder.eval()
    head.eval()

    def score(v: np.ndarray) -> np.ndarray:
        flat = [c for i in v for c in captions[i]]
        with torch.no_grad():
            per = np.concatenate([forward(flat[s : s + 256]).numpy() for s in range(0, len(flat), 256)])
        owner = np.repeat(np.arange(len(v)), [len(captions[i]) for i in v])
        return np.bincount(owner, weights=per) / np.bincount(owner)

    return score
