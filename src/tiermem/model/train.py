"""The M3-S training loop: Adam + StepLR on mini-batches, validation Spearman each epoch.

Defaults are the paper's Memento10k setting (Adam lr 1e-3, weight decay 1e-5, StepLR(5, 0.2),
20 epochs, batch 32). Training runs inside `torch.random.fork_rng` seeded from the config,
so a given seed gives the same weights on CPU and the caller's RNG state is untouched.
Batches are drawn by indexing pre-built tensors (no DataLoader: its per-batch overhead
dominates for a 500-feature MLP).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from tiermem.errors import TiermemError
from tiermem.model.config import EpochLog, TrainConfig
from tiermem.model.losses import get_loss
from tiermem.run import ProgressCallback, Step
from tiermem.runtime import set_threads


def build_mlp(
    n_in: int, hidden: tuple[int, ...] | list[int] = (512, 64), dropout: float = 0.0
) -> nn.Sequential:
    """M3-S head: Linear-Mish(-Dropout) per hidden size, then Linear-Sigmoid to a score in [0, 1]."""
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.Mish()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers += [nn.Linear(width, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


def _spearman(y: np.ndarray, p: np.ndarray) -> float:
    from tiermem.metrics import spearman

    return spearman(y, p)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run with `n` torch threads (0: the runtime default), then restore the caller's count."""
    previous = torch.get_num_threads()
    set_threads(n or None)
    try:
        yield
    finally:
        set_threads(previous)


def _adam(net: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused CPU kernel where torch has it: ~40% less time per step than
    the for-each version for this small MLP (the step is a third of the work at batch 32)."""
    try:
        return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4: no fused Adam on CPU
        return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def predict_mlp(net: nn.Module, X: np.ndarray | torch.Tensor, batch: int = 8192) -> np.ndarray:
    """Scores of a trained net (eval mode, no dropout), float64, on the net's device."""
    net.eval()
    device = next(net.parameters()).device
    Xt = torch.as_tensor(X, dtype=torch.float32).to(device)
    out = [net(Xt[i : i + batch]).squeeze(1) for i in range(0, Xt.shape[0], batch)]
    return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)


def train_mlp(
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    *,
    hidden: tuple[int, ...] | list[int] = (512, 64),
    dropout: float = 0.0,
    config: TrainConfig | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    device: str = "cpu",
    watch: np.ndarray | None = None,
) -> tuple[nn.Sequential, list[EpochLog], int, np.ndarray | None]:
    """Train one MLP on already-standardised `X`; return (net, per-epoch log, kept epoch,
    watched predictions).

    With validation data and ``keep_best``, the returned weights are those of the epoch with
    the best validation Spearman; otherwise the last epoch's. `watch` (standardised rows) is
    scored after every epoch without choosing anything: the last item is those scores, one row
    per epoch (None without `watch`). `progress`, when given, hears of every epoch
    (`tiermem.run.Step`). `device` ("cpu" or "cuda") holds the data and the net while training;
    the net comes back on the CPU.
    """
    cfg = config or TrainConfig()
    cfg.validate()
    loss_fn = get_loss(cfg.loss, **cfg.loss_params)
    seed = cfg.seed if seed is None else seed
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float32).ravel()
    if Xt.ndim != 2 or Xt.shape[0] != yt.shape[0]:
        raise TiermemError(f"X has shape {tuple(Xt.shape)} but y has {yt.shape[0]} values")
    has_val = X_val is not None and y_val is not None and len(y_val) > 1

    n = Xt.shape[0]
    log: list[EpochLog] = []
    watched: list[np.ndarray] = []
    with _torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_mlp(Xt.shape[1], hidden, dropout).to(device)
        Xt, yt = Xt.to(device), yt.to(device)
        if cfg.init_bias:
            m = float(np.clip(float(yt.mean()), 1e-3, 1 - 1e-3))
            with torch.no_grad():
                net[-2].bias.fill_(math.log(m / (1 - m)))  # net[-2]: the output Linear
        opt = _adam(net, cfg)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
        best_rho, best_epoch, best_state = -math.inf, cfg.epochs - 1, None
        for epoch in range(cfg.epochs):
            net.train()
            order = torch.randperm(n).to(device)
            total, count = 0.0, 0
            for start in range(0, n, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                if idx.numel() < 2:  # a 1-item batch has no rank and no batch mean
                    continue
                pred = net(Xt[idx]).squeeze(1)
                loss = loss_fn(pred, yt[idx], epoch=epoch, n_epochs=cfg.epochs)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
                count += idx.numel()
            lr = opt.param_groups[0]["lr"]
            sched.step()
            rho = _spearman(y_val, predict_mlp(net, X_val)) if has_val else math.nan
            if watch is not None:
                watched.append(predict_mlp(net, watch))
            log.append(EpochLog(epoch, total / max(count, 1), rho, lr))
            if has_val and cfg.keep_best and math.isfinite(rho) and rho > best_rho:
                best_rho, best_epoch = rho, epoch
                best_state = copy.deepcopy(net.state_dict())
            if progress is not None:
                shown = f"val ρ {rho:.3f}" if has_val else f"loss {log[-1].train_loss:.4f}"
                progress(
                    Step(f"seed {seed}", epoch + 1, cfg.epochs, "epochs", f"epoch {epoch + 1} · {shown}")
                )
        if best_state is not None:
            net.load_state_dict(best_state)
        else:
            best_epoch = cfg.epochs - 1
    net.eval()
    return net.cpu(), log, best_epoch, np.stack(watched) if watch is not None else None


__all__ = ["build_mlp", "predict_mlp", "train_mlp"]
