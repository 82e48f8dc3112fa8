"""Time the heads at the reference size: 7000 videos × 512 features, 20 epochs.

Target: the M3-S head trains in ≤ 30 s on the 2-core CPU. Timing does not depend
on the feature values, so the matrix is synthetic (standard normal, labels a noisy sigmoid
of a random projection); accuracy on real data is measured by benchmarks/realbench.py.

    .venv/bin/python benchmarks/head_training.py [--videos 7000 --features 512 --threads 1,2]

Prints wall time and process CPU time: on a machine shared with other jobs the CPU time is
the steadier figure (wall time there mostly measures the other jobs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tiermem.model import M3SHead, RidgeHead, TrainConfig
from tiermem.runtime import set_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=7000)
    ap.add_argument("--features", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to time")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.videos, args.features)).astype(np.float32)
    logit = X @ rng.standard_normal(args.features) / np.sqrt(args.features)
    y = 1 / (1 + np.exp(-(logit + 0.5 * rng.standard_normal(args.videos))))
    n_val = args.videos // 10
    Xt, yt, Xv, yv = X[n_val:], y[n_val:], X[:n_val], y[:n_val]
    print(f"{args.videos} videos × {args.features} features, {args.epochs} epochs")
    M3SHead(train=TrainConfig(epochs=1)).fit(Xt[:256], yt[:256])  # warm-up: first-call costs
    RidgeHead().fit(Xt[:256], yt[:256])
    for threads in (int(t) for t in args.threads.split(",")):
        set_threads(threads)  # ridge's BLAS; the MLP's count is TrainConfig.threads
        for loss in ("mse", "mse_to_spearman"):
            head = M3SHead(train=TrainConfig(epochs=args.epochs, loss=loss, threads=threads))
            wall, cpu = _timed(lambda: head.fit(Xt, yt, Xv, yv))
            print(f"{threads} thread(s)  m3s [512, 64] {loss:<16} wall {wall:6.1f} s   cpu {cpu:6.1f} s")
        wall, cpu = _timed(lambda: RidgeHead().fit(Xt, yt))
        print(f"{threads} thread(s)  ridge (LOO-CV, 37 alphas)     wall {wall:6.1f} s   cpu {cpu:6.1f} s")


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


if __name__ == "__main__":
    main()
