"""The training loop: multi-task U-Net on an `ArrayDataset`, checkpointed and resumable.

`train(cfg, dataset)` splits the rows (or takes `split`), trains with AdamW + OneCycle/cosine
(channels-last; bf16 autocast where the CPU has native bf16), prints a progress line every
`run.log_every` steps, validates each epoch (plane accuracy, Dice per class), and writes to
`<run.out_dir>/<run.name>/`:
`last.pt` (every epoch), `best.pt` (best validation score = mean of plane accuracy and mean
Dice), `history.jsonl` (one line per epoch). `resume=True` continues from `last.pt`; `run.init_from`
starts a new run (a fine-tuning stage) from another run's weights, with a fresh optimiser;
`run.teacher` adds a distillation term from another trained network's segmentation logits.

Determinism: the epoch's shuffle comes from a generator seeded with (seed, epoch), augmentation
from (seed, epoch, row) and dropout from torch's global RNG, whose state the checkpoint keeps;
so a resumed run matches an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from edge_fetal.model.loss import MultiTaskLoss, distillation_loss
from edge_fetal.model.unet import SEG_CLASSES, MultiTaskUNet
from edge_fetal.train.augment import Augmenter
from edge_fetal.train.config import TrainConfig
from edge_fetal.train.dataset import ArrayDataset, split_indices

CHECKPOINT_FORMAT = 1


def train(
    cfg: TrainConfig,
    dataset: ArrayDataset,
    *,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Train `cfg` on `dataset` (un-augmented; rows are split here); return the run folder.

    split: (train rows, val rows) into the dataset's arrays; default: a grouped, plane-stratified
    split with `data.val_fraction`. On resume the checkpoint's split is used.
    """
    run_dir = Path(cfg.run.out_dir) / cfg.run.name
    last_path = run_dir / "last.pt"
    checkpoint = _load_for_resume(last_path, cfg) if resume else None
    if not resume and last_path.exists():
        raise ValueError(f"{run_dir} already holds a run; resume it or choose another run.name")

    if checkpoint is not None:
        train_rows, val_rows = (np.asarray(checkpoint["split"][k], dtype=np.int64) for k in ("train", "val"))
    elif split is not None:
        train_rows, val_rows = (np.asarray(s, dtype=np.int64) for s in split)
    else:
        rows = dataset.indices
        tr, va = split_indices(dataset.plane[rows], dataset.groups[rows], cfg.data.val_fraction, cfg.run.seed)
        train_rows, val_rows = rows[tr], rows[va]
    if len(train_rows) == 0 or np.intersect1d(train_rows, val_rows).size:
        raise ValueError("the training split is empty or overlaps the validation split")
    if max(train_rows.max(), val_rows.max(initial=0)) >= len(dataset.images):
        raise ValueError(f"split rows exceed the dataset's {len(dataset.images)} frames (another dataset?)")
    train_set = dataset.view(train_rows, augmenter=Augmenter(cfg.augment), seed=cfg.run.seed)
    val_set = dataset.view(val_rows)

    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.run.threads)
    torch.use_deterministic_algorithms(cfg.run.deterministic, warn_only=True)
    try:
        torch.manual_seed(cfg.run.seed)
        model = MultiTaskUNet(**dataclasses.asdict(cfg.model)).to(memory_format=torch.channels_last)
        loss_fn = MultiTaskLoss(**cfg.loss.loss_arguments())
        batch_size = cfg.data.batch_size
        steps_per_epoch = max(1, len(train_set) // batch_size)
        optimizer = _optimizer(model, cfg)
        scheduler = _scheduler(optimizer, cfg, steps_per_epoch)
        start_epoch, best_score = 0, -math.inf
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            torch.set_rng_state(checkpoint["torch_rng"])
            start_epoch, best_score = checkpoint["epoch"], checkpoint["best_score"]
            _truncate_history(run_dir / "history.jsonl", start_epoch)
            log(f"resumed {run_dir} after epoch {start_epoch}")
        elif cfg.run.init_from:
            model.load_state_dict(_initial_weights(Path(cfg.run.init_from), cfg))
            log(f"starting from the weights of {cfg.run.init_from}")
        teacher = _teacher_model(Path(cfg.run.teacher)) if cfg.run.teacher else None
        if teacher is not None:
            log(f"learning also from the teacher {cfg.run.teacher} (distillation weight {cfg.loss.distill_weight}, "
                f"temperature {cfg.loss.distill_temperature})")
        run_dir.mkdir(parents=True, exist_ok=True)
        log(f"train {len(train_set)} / val {len(val_set)} frames, {steps_per_epoch} steps/epoch, "
            f"{cfg.optim.epochs} epochs, {'bf16' if use_bf16(cfg) else 'fp32'} -> {run_dir}")

        for epoch in range(start_epoch, cfg.optim.epochs):
            t0 = time.monotonic()
            train_set.set_epoch(epoch)
            loss_fn.dice_weight = cfg.loss.dice_weight_at(epoch, cfg.optim.epochs)
            shuffle = torch.Generator().manual_seed(cfg.run.seed * 100_003 + epoch)
            order = torch.randperm(len(train_set), generator=shuffle)
            loader = DataLoader(train_set, batch_size=batch_size, sampler=order.tolist(),
                                drop_last=len(train_set) >= batch_size)
            train_figures = _train_epoch(model, teacher, loss_fn, loader, optimizer, scheduler, cfg, epoch, log)
            val_figures = evaluate(model, val_set, loss_fn, cfg) if len(val_set) else {}
            score = val_figures.get("score", -train_figures["loss"])
            is_best = score > best_score
            best_score = max(best_score, score)
            state = {
                "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "torch_rng": torch.get_rng_state(),
                "config": cfg.to_dict(), "split": {"train": train_rows.tolist(), "val": val_rows.tolist()},
                "best_score": best_score, "figures": val_figures,
            }
            _atomic_save(state, last_path)
            if is_best:
                _atomic_save(state, run_dir / "best.pt")
            record = {"epoch": epoch + 1, "train": train_figures, "val": val_figures, "best": is_best,
                      "dice_weight": loss_fn.dice_weight, "lr": scheduler.get_last_lr()[0],
                      "seconds": round(time.monotonic() - t0, 1)}
            with open(run_dir / "history.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            log(f"epoch {epoch + 1}/{cfg.optim.epochs} " + _format_figures(val_figures or train_figures)
                + (" *best*" if is_best else "") + f" ({record['seconds']} s)")
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)
    return run_dir


def _train_epoch(model, teacher, loss_fn, loader, optimizer, scheduler, cfg: TrainConfig, epoch: int, log) -> dict:
    model.train()
    sums = {"loss": 0.0, "seg_ce": 0.0, "dice": 0.0, "plane_ce": 0.0}
    if teacher is not None:
        sums["distill"] = 0.0
    steps, t0 = 0, time.monotonic()
    for batch in loader:
        image = batch["image"].contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16(cfg)):
            seg_logits, plane_logits = model(image)
        terms = loss_fn(seg_logits, plane_logits, batch["label"], batch["has_mask"], batch["plane"])
        total = terms.total
        figures = {"seg_ce": terms.seg_ce, "dice": terms.dice, "plane_ce": terms.plane_ce}
        if teacher is not None:
            figures["distill"] = _distillation_term(teacher, image, seg_logits, cfg)
            total = total + cfg.loss.distill_weight * figures["distill"]
        figures["loss"] = total
        if not torch.isfinite(total):
            raise RuntimeError(f"non-finite loss at epoch {epoch + 1} step {steps + 1}: {terms}")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        for key, value in figures.items():
            sums[key] += float(value.detach())
        steps += 1
        if steps % cfg.run.log_every == 0:
            mean = {k: v / steps for k, v in sums.items()}
            extra = f" distill {mean['distill']:.4f}" if teacher is not None else ""
            log(f"epoch {epoch + 1} step {steps}/{len(loader)} loss {mean['loss']:.4f} "
                f"(ce {mean['seg_ce']:.3f} dice {mean['dice']:.3f} plane {mean['plane_ce']:.3f}{extra}) "
                f"lr {scheduler.get_last_lr()[0]:.2e} {(time.monotonic() - t0) / steps:.2f} s/step")
    return {k: round(v / max(steps, 1), 5) for k, v in sums.items()}


def _distillation_term(teacher: MultiTaskUNet, image: torch.Tensor, seg_logits: torch.Tensor,
                       cfg: TrainConfig) -> torch.Tensor:
    """The distillation loss of the student's segmentation logits against the teacher's, on the
    same (augmented) frames; the teacher runs without gradients, in eval mode."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16(cfg)):
        teacher_logits = teacher(image).seg_logits
    return distillation_loss(seg_logits, teacher_logits, cfg.loss.distill_temperature)


@torch.no_grad()
def evaluate(model: MultiTaskUNet, dataset: ArrayDataset, loss_fn: MultiTaskLoss, cfg: TrainConfig) -> dict:
    """Loss, plane accuracy, and per class the mean hard Dice over masked frames showing that class."""
    model.eval()
    num_classes = cfg.model.num_seg_classes
    dice_sum, dice_n = np.zeros(num_classes), np.zeros(num_classes)
    loss_sum, correct = 0.0, 0
    for batch in DataLoader(dataset, batch_size=cfg.data.batch_size):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16(cfg)):
            seg_logits, plane_logits = model(batch["image"].contiguous(memory_format=torch.channels_last))
        terms = loss_fn(seg_logits, plane_logits, batch["label"], batch["has_mask"], batch["plane"])
        loss_sum += float(terms.total) * len(batch["plane"])
        correct += int((plane_logits.argmax(1) == batch["plane"]).sum())
        pred, truth = seg_logits.argmax(1)[batch["has_mask"]], batch["label"][batch["has_mask"]]
        for c in range(1, num_classes):
            p, t = pred == c, truth == c
            shown = t.flatten(1).any(1)
            inter, size = (p & t).flatten(1).sum(1), p.flatten(1).sum(1) + t.flatten(1).sum(1)
            dice_sum[c] += float((2 * inter[shown] / size[shown]).sum())
            dice_n[c] += int(shown.sum())
    names = SEG_CLASSES if num_classes == len(SEG_CLASSES) else [f"class{c}" for c in range(num_classes)]
    dice = {names[c]: (round(float(dice_sum[c] / dice_n[c]), 4) if dice_n[c] else None)
            for c in range(1, num_classes)}
    present = [v for v in dice.values() if v is not None]
    plane_acc = correct / len(dataset)
    mean_dice = float(np.mean(present)) if present else None
    score = (plane_acc + mean_dice) / 2 if mean_dice is not None else plane_acc
    return {"loss": round(loss_sum / len(dataset), 5), "plane_acc": round(plane_acc, 4), "dice": dice,
            "mean_dice": None if mean_dice is None else round(mean_dice, 4), "score": round(score, 5)}


def use_bf16(cfg: TrainConfig) -> bool:
    """bf16 autocast on: "bf16" always, "auto" only with native oneDNN bf16 support on this CPU."""
    if cfg.run.autocast != "auto":
        return cfg.run.autocast == "bf16"
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and BatchNorm (1-d parameters)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.optim.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.optim.lr)


def _scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.optim.epochs * steps_per_epoch
    if cfg.optim.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.optim.lr, total_steps=total,
                                                   pct_start=cfg.optim.warmup_fraction)
    warmup = max(1, int(cfg.optim.warmup_fraction * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _read_checkpoint(path: Path, purpose: str) -> dict:
    """A checkpoint of this loop's format, its config read with today's options (`_with_current_defaults`);
    `purpose` starts the error messages."""
    if not path.is_file():
        raise ValueError(f"{purpose}: {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "source" in checkpoint and "format" not in checkpoint:  # export/torch_weights.py: no optimiser, maybe folded
        raise ValueError(f"{purpose}: {path} holds the torch weights shipped beside an ONNX model, for inference "
                         f"({checkpoint['source']}); start from the training checkpoint (runs/NAME/best.pt)")
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{purpose}: {path} has checkpoint format {checkpoint.get('format')}, "
                         f"expected {CHECKPOINT_FORMAT}")
    checkpoint["config"] = _with_current_defaults(checkpoint["config"])
    return checkpoint


def _load_for_resume(path: Path, cfg: TrainConfig) -> dict:
    checkpoint = _read_checkpoint(path, "cannot resume")
    saved, current = checkpoint["config"], cfg.to_dict()
    changed = [s for s in current if s != "run" and saved.get(s) != current[s]]
    if changed:
        raise ValueError(f"cannot resume {path}: config section(s) {changed} differ from the checkpoint's")
    return checkpoint


def _initial_weights(path: Path, cfg: TrainConfig) -> dict:
    """The model weights of the checkpoint a fine-tuning run starts from (same architecture only)."""
    checkpoint = _read_checkpoint(path, "run.init_from")
    saved, current = checkpoint["config"]["model"], cfg.to_dict()["model"]
    if saved != current:
        raise ValueError(f"run.init_from: {path} holds another architecture ({saved}) than [model] ({current})")
    return checkpoint["model"]


def _teacher_model(path: Path) -> MultiTaskUNet:
    """The network of a training checkpoint, frozen in eval mode, to distil from (any architecture
    with this run's classes)."""
    checkpoint = _read_checkpoint(path, "run.teacher")
    teacher = MultiTaskUNet(**checkpoint["config"]["model"])
    teacher.load_state_dict(checkpoint["model"])
    teacher.requires_grad_(False)
    return teacher.eval().to(memory_format=torch.channels_last)


def _with_current_defaults(saved: dict) -> dict:
    """A checkpoint's config with the keys added to the config since it was saved, at their
    defaults: a new option defaults to what the code did before it, so the checkpoint was trained
    with that value."""
    defaults = TrainConfig().to_dict()
    return {section: {**defaults.get(section, {}), **values} if isinstance(values, dict) else values
            for section, values in saved.items()}


def _atomic_save(state: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _truncate_history(path: Path, epochs_done: int) -> None:
    """Drop history lines written after the checkpoint we resume from (a crash between the two)."""
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line and json.loads(line)["epoch"] <= epochs_done]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _format_figures(figures: dict) -> str:
    if "plane_acc" not in figures:
        return f"train loss {figures['loss']:.4f}"
    dice = " ".join(f"{k} {v:.3f}" for k, v in figures["dice"].items() if v is not None)
    return f"val loss {figures['loss']:.4f} plane acc {figures['plane_acc']:.3f} dice [{dice}]"
