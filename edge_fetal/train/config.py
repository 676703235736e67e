"""Training configuration: one frozen dataclass per section, loaded from TOML or JSON.

Sections: data, model, loss, optim, augment, run. Every key is optional (defaults below); an
unknown section or key, or a value of the wrong type, raises ValueError naming it. Example TOML:

    [model]
    widths = [16, 32, 64, 128, 256]
    [optim]
    epochs = 20
    [run]
    name = "mtl_v1"
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_fetal.model import DICE_POOLING


@dataclass(frozen=True)
class DataConfig:
    image_size: int = 256
    # The training input (H, W); () = image_size² (a square letterbox). The fitted box of the
    # 800x540 frames of HC18 and the simulator, (176, 256), trains the network on what the engine
    # feeds it when the model takes any multiple of its stride (no padding rows).
    input_hw: tuple[int, ...] = ()
    val_fraction: float = 0.15  # used when the caller gives no explicit split
    batch_size: int = 16
    # Real frames: HC18, split by pregnancy (NNN) so no subject is on both sides.
    hc18_dir: str = "../shared/data/hc18"
    hc18_val_fraction: float = 0.2
    hc18_repeat: int = 2  # each real training frame appears this often per epoch (fresh augmentation)
    # Early-pregnancy heads (true HC under hc18_small_head_hc_mm), small in the frame and often
    # beside a gestational sac, are where the head mask fails most: each appears this many more
    # times per epoch.
    hc18_small_head_repeat: int = 0
    hc18_small_head_hc_mm: float = 100.0
    split_seed: int = 0
    # Simulated frames per plane (head, abdomen, femur, other), and simulated targets pasted on
    # real HC18 backgrounds (abdomen, femur, other) so "real texture" never means "head".
    sim_train: tuple[int, int, int, int] = (200, 300, 300, 200)
    sim_val: tuple[int, int, int, int] = (50, 50, 50, 50)
    pasted_train: tuple[int, int, int] = (100, 100, 100)
    pasted_val: tuple[int, int, int] = (20, 20, 20)
    # Simulated early-pregnancy heads (10.5-14 weeks, in the sac, `render_frame(early_pregnancy=True)`),
    # beyond the simulator's 14-40 weeks of sim_train: the real heads the mask fails most on.
    sim_early_heads_train: int = 0
    sim_early_heads_val: int = 0
    sim_seed: int = 1

    @property
    def input_box(self) -> tuple[int, int]:
        """The (H, W) every training frame is letterboxed into."""
        size = self.image_size
        return (self.input_hw[0], self.input_hw[1]) if self.input_hw else (size, size)


@dataclass(frozen=True)
class ModelConfig:  # keyword arguments of MultiTaskUNet
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    separable_from: int = 2
    decoder_separable_from: int = 0
    full_input_conv: bool = False
    signed_features: bool = False
    num_seg_classes: int = 4
    num_planes: int = 4
    dropout: float = 0.2


@dataclass(frozen=True)
class LossConfig:  # keyword arguments of MultiTaskLoss (`loss_arguments`), and the Dice schedule
    seg_weight: float = 1.0
    plane_weight: float = 1.0
    dice_pooling: str = "batch"  # "batch" | "image" | "both" (model/loss.py)
    # The Dice term's share of the segmentation loss (seg_ce + dice_weight * dice); 0 = cross-entropy
    # alone, whose boundary sits where the classes are equally likely rather than where overlap pays.
    dice_weight: float = 1.0
    # The last N epochs train on cross-entropy alone (dice_weight 0): the Dice term shapes the
    # outline early, then pushes it outward (EXPERIMENTS.md beside this file, "Cross-entropy
    # alone for a last stage").
    cross_entropy_last_epochs: int = 0
    # Weight of the distillation term (model/loss.py `distillation_loss`) from run.teacher's
    # segmentation logits, added to the loss; 0 = no teacher. Its temperature softens both sides.
    distill_weight: float = 0.0
    distill_temperature: float = 1.0

    def loss_arguments(self) -> dict[str, Any]:
        """Keyword arguments of MultiTaskLoss (the schedule and the distillation are the training loop's)."""
        arguments = dataclasses.asdict(self)
        for key in ("cross_entropy_last_epochs", "distill_weight", "distill_temperature"):
            del arguments[key]
        return arguments

    def dice_weight_at(self, epoch: int, epochs: int) -> float:
        """The Dice weight of 0-based `epoch` out of `epochs`."""
        return 0.0 if epoch >= epochs - self.cross_entropy_last_epochs else self.dice_weight


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 1e-4
    epochs: int = 20
    schedule: str = "onecycle"  # "onecycle" | "cosine" (linear warm-up, then cosine to 0)
    warmup_fraction: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (p_*) and ranges of the ultrasound augmentations in `augment.py`."""

    p_gamma: float = 0.8
    gamma_range: tuple[float, float] = (0.7, 1.5)
    gain_range: tuple[float, float] = (0.75, 1.25)
    p_depth: float = 0.5
    zoom_range: tuple[float, float] = (0.85, 1.2)  # >1 zooms in (shallower depth)
    p_rotate: float = 0.7
    max_rotation_deg: float = 20.0
    p_flip: float = 0.5
    p_translate: float = 0.5
    max_translate_frac: float = 0.08
    p_speckle: float = 0.5
    speckle_strength: tuple[float, float] = (0.1, 0.4)
    p_shadow: float = 0.3
    shadow_attenuation: tuple[float, float] = (0.2, 0.7)  # remaining intensity inside the shadow


@dataclass(frozen=True)
class RunConfig:
    name: str = "mtl"
    out_dir: str = "runs"
    seed: int = 0
    threads: int = 2
    # "auto": bf16 autocast only where oneDNN has native bf16 convs (AVX512-BF16 / AMX); on an
    # AVX2-only CPU bf16 convs take a slow reference path (measured 7x slower than fp32 here).
    autocast: str = "auto"  # "auto" | "bf16" | "off"
    log_every: int = 20  # steps between progress lines
    deterministic: bool = True
    # A checkpoint whose model weights start this run (a fine-tuning stage); "" starts from the
    # seeded random initialisation. Its [model] section must equal this config's.
    init_from: str = ""
    # A checkpoint of a (wider) trained network whose segmentation logits this run also learns
    # from, weighted by loss.distill_weight; its architecture may differ. "" = none.
    teacher: str = ""


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if self.data.batch_size < 1 or self.data.image_size < 16:
            raise ValueError("data.batch_size must be >= 1 and data.image_size >= 16")
        stride = 2 ** (len(self.model.widths) - 1)  # the network's size multiple
        if self.data.input_hw and (len(self.data.input_hw) != 2 or any(v < stride or v % stride for v in self.data.input_hw)):
            raise ValueError(f"data.input_hw must be [H, W], both multiples of the network's stride {stride}, "
                             f"got {list(self.data.input_hw)}")
        if self.data.hc18_repeat < 1 or self.data.hc18_small_head_repeat < 0:
            raise ValueError(f"data.hc18_repeat must be >= 1 and data.hc18_small_head_repeat >= 0, got "
                             f"{self.data.hc18_repeat} and {self.data.hc18_small_head_repeat}")
        if self.data.sim_early_heads_train < 0 or self.data.sim_early_heads_val < 0:
            raise ValueError(f"data.sim_early_heads_train and data.sim_early_heads_val must be >= 0, got "
                             f"{self.data.sim_early_heads_train} and {self.data.sim_early_heads_val}")
        if not 0.0 <= self.data.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.data.val_fraction}")
        if self.loss.dice_pooling not in DICE_POOLING:
            raise ValueError(f"loss.dice_pooling must be one of {DICE_POOLING}, got {self.loss.dice_pooling!r}")
        if self.loss.dice_weight < 0:
            raise ValueError(f"loss.dice_weight must be >= 0, got {self.loss.dice_weight}")
        if self.loss.distill_weight < 0 or self.loss.distill_temperature <= 0:
            raise ValueError(f"loss.distill_weight must be >= 0 and loss.distill_temperature > 0, got "
                             f"{self.loss.distill_weight} and {self.loss.distill_temperature}")
        if bool(self.loss.distill_weight) != bool(self.run.teacher):
            raise ValueError("loss.distill_weight > 0 and run.teacher go together: set both or neither "
                             f"(got distill_weight {self.loss.distill_weight}, teacher {self.run.teacher!r})")
        if not 0 <= self.loss.cross_entropy_last_epochs < self.optim.epochs:
            raise ValueError(f"loss.cross_entropy_last_epochs must be in [0, optim.epochs), "
                             f"got {self.loss.cross_entropy_last_epochs}")
        if self.optim.schedule not in ("onecycle", "cosine"):
            raise ValueError(f"optim.schedule must be 'onecycle' or 'cosine', got {self.optim.schedule!r}")
        if self.optim.epochs < 1 or self.optim.lr <= 0:
            raise ValueError("optim.epochs must be >= 1 and optim.lr > 0")
        if self.run.autocast not in ("auto", "bf16", "off"):
            raise ValueError(f"run.autocast must be 'auto', 'bf16' or 'off', got {self.run.autocast!r}")
        if self.run.threads < 1 or self.run.log_every < 1:
            raise ValueError("run.threads and run.log_every must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        hints = typing.get_type_hints(cls)
        unknown = set(raw) - set(hints)
        if unknown:
            raise ValueError(f"unknown config section(s): {sorted(unknown)}")
        return cls(**{name: _section(hints[name], raw[name], name) for name in raw})


def _section(section_cls: type, raw: Any, section: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"config section [{section}] must be a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(section_cls)
    unknown = set(raw) - set(hints)
    if unknown:
        raise ValueError(f"unknown key(s) in [{section}]: {sorted(unknown)}")
    return section_cls(**{k: _coerce(hints[k], v, f"{section}.{k}") for k, v in raw.items()})


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check a TOML/JSON value against the field's type; lists become tuples, ints may be floats."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(hint)
        if args[-1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{where} must have {len(args)} items, got {value!r}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"{where} must be {hint.__name__}, got {value!r}")
    return value


def load_config(path: str | Path) -> TrainConfig:
    """Read a `.toml` or `.json` file into a TrainConfig.

    A file may name another in `extends` (a path relative to its own folder): that file's settings
    apply first, then this file's, key by key within each table. An experiment then states only
    what it changes from the recipe it varies.
    """
    return TrainConfig.from_dict(_read_with_bases(Path(path), ()))


def _read_with_bases(path: Path, children: tuple[Path, ...]) -> dict[str, Any]:
    """The settings of `path` merged over those of the file it extends, if any."""
    raw = _read_settings(path)
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ValueError(f"{path.name}: extends must name a config file, got {base!r}")
    base_path = path.parent / base
    chain = (*children, path.resolve())
    if base_path.resolve() in chain:
        raise ValueError(f"{path.name}: extends {base} leads back to itself")
    if not base_path.is_file():
        raise ValueError(f"{path.name}: extends {base}, which does not exist beside it")
    return _merged(_read_with_bases(base_path, chain), raw)


def _read_settings(path: Path) -> dict[str, Any]:
    if path.suffix == ".toml":
        try:
            import tomllib  # Python >= 3.11
        except ModuleNotFoundError:  # Python 3.10: the same parser, packaged as tomli
            import tomli as tomllib

        return tomllib.loads(path.read_text(encoding="utf-8"))
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    raise ValueError(f"config must be .toml or .json, got {path.name}")


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`: tables merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged
