"""Multi-task loss: seg_weight * (soft Dice + cross-entropy) + plane_weight * plane cross-entropy.

Samples without a mask (`has_mask` False, e.g. "other" frames with no annotation) count only in
the plane term. A batch with no masks at all has a seg loss of exactly zero (never NaN).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from edge_fetal.model import DICE_POOLING


class LossTerms(NamedTuple):
    total: torch.Tensor
    seg_ce: torch.Tensor
    dice: torch.Tensor  # 1 - mean soft Dice over foreground classes present (pooled as configured)
    plane_ce: torch.Tensor


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, pooling: str = "batch") -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes (1..C-1) present in `target`.

    probs: [M,C,H,W] softmax probabilities; target: [M,H,W] int64 labels. No foreground → 0.
    pooling "batch": one Dice per class over the whole batch (stable, but a large structure
    outweighs a small one); "image": one Dice per image and class present, averaged, which is
    what `eval` reports (the mean of per-frame Dice), so a small early-pregnancy head counts as
    much as a large one; "both": the mean of the two.
    """
    if pooling not in DICE_POOLING:
        raise ValueError(f"dice pooling must be one of {DICE_POOLING}, got {pooling!r}")
    if pooling == "both":
        return 0.5 * (soft_dice_loss(probs, target, eps, "batch") + soft_dice_loss(probs, target, eps, "image"))
    num_classes = probs.shape[1]
    one_hot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3) if pooling == "batch" else (2, 3)
    intersection = (probs * one_hot).sum(dims)[..., 1:]
    cardinality = (probs + one_hot).sum(dims)[..., 1:]
    present = one_hot.sum(dims)[..., 1:] > 0
    if not bool(present.any()):
        return probs.new_zeros(())
    dice = (2 * intersection + eps) / (cardinality + eps)
    return 1 - dice[present].mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-pixel KL divergence from the teacher's class probabilities to the student's, both
    softened by `temperature`, times temperature² (so its gradients keep their scale; Hinton et al.
    2015, "Distilling the knowledge in a neural network"), averaged over pixels.

    It lets a narrower network learn where a wider one puts each outline, including on frames
    without a mask; logits [N,C,H,W] of the same shape, any float dtype (computed in float32).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} "
                         f"and {tuple(teacher_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    student = F.log_softmax(student_logits.float() / temperature, dim=1)
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    per_pixel = F.kl_div(student, teacher, reduction="none", log_target=True).sum(dim=1)
    return per_pixel.mean() * temperature**2


class MultiTaskLoss(nn.Module):
    """`forward(seg_logits, plane_logits, seg_target, has_mask, plane_target) -> LossTerms`.

    seg_logits [N,C,H,W], plane_logits [N,P] (any float dtype; computed in float32),
    seg_target [N,H,W] int64, has_mask [N] bool, plane_target [N] int64.
    """

    def __init__(self, seg_weight: float = 1.0, plane_weight: float = 1.0, dice_pooling: str = "batch",
                 dice_weight: float = 1.0):
        super().__init__()
        if seg_weight < 0 or plane_weight < 0 or seg_weight + plane_weight == 0:
            raise ValueError(f"weights must be >= 0 and not both 0, got {seg_weight}, {plane_weight}")
        if dice_weight < 0:
            raise ValueError(f"dice_weight must be >= 0, got {dice_weight}")
        if dice_pooling not in DICE_POOLING:
            raise ValueError(f"dice_pooling must be one of {DICE_POOLING}, got {dice_pooling!r}")
        self.seg_weight = seg_weight
        self.plane_weight = plane_weight
        self.dice_pooling = dice_pooling
        self.dice_weight = dice_weight

    def forward(
        self,
        seg_logits: torch.Tensor,
        plane_logits: torch.Tensor,
        seg_target: torch.Tensor,
        has_mask: torch.Tensor,
        plane_target: torch.Tensor,
    ) -> LossTerms:
        plane_ce = F.cross_entropy(plane_logits.float(), plane_target)
        if bool(has_mask.any()):
            logits = seg_logits[has_mask].float()
            target = seg_target[has_mask]
            seg_ce = F.cross_entropy(logits, target)
            dice = soft_dice_loss(logits.softmax(dim=1), target, pooling=self.dice_pooling)
        else:
            seg_ce = dice = plane_ce.new_zeros(())
        total = self.seg_weight * (seg_ce + self.dice_weight * dice) + self.plane_weight * plane_ce
        return LossTerms(total, seg_ce, dice, plane_ce)
