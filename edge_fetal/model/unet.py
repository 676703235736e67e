"""Multi-task U-Net: one encoder, a segmentation decoder and a plane classifier on the bottleneck.

After Qazi et al. 2023 (U-Net with a classification head, trained on a weighted segmentation +
classification loss). Input `[N,1,H,W]` float in [0,1], H and W divisible by 2**(levels-1).
`forward` always returns `MultiTaskOutput(seg_logits [N,S,H,W], plane_logits [N,P])`.

Only ONNX / TensorRT friendly ops: Conv, BatchNormalization, Relu, MaxPool, Resize (bilinear,
scale 2), Concat, GlobalAveragePool, Flatten, Gemm; `ExportWrapper` adds ArgMax + Cast.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

# The class names belong to the model contract, defined once beside the runtime that serves it.
from edge_fetal.runtime.backend import PLANES as PLANE_CLASSES
from edge_fetal.runtime.backend import SEG_CLASSES

ONNX_INPUT_NAMES = ("image",)
ONNX_OUTPUT_NAMES = ("seg_labels", "plane_logits")


class MultiTaskOutput(NamedTuple):
    seg_logits: torch.Tensor  # [N, num_seg_classes, H, W]
    plane_logits: torch.Tensor  # [N, num_planes]


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def separable_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1 (MobileNet style): ~8x fewer MACs than a full 3x3."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def double_conv(in_ch: int, out_ch: int, separable: bool) -> nn.Sequential:
    make = separable_bn_relu if separable else conv_bn_relu
    return nn.Sequential(make(in_ch, out_ch), make(out_ch, out_ch))


class Encoder(nn.Module):
    """Image → one feature map per level; level i has `widths[i]` channels at 1/2**i scale.

    full_input_conv keeps the first convolution, on the input's few channels, a full 3x3 when
    level 0 is separable: a depthwise filter over a one-channel image is a single 3x3 filter,
    too little to start from (a trained run learned the femur late, edge_fetal/train/EXPERIMENTS.md),
    while a full one costs little there.
    """

    def __init__(self, widths: Sequence[int], separable_from: int, in_channels: int = 1,
                 full_input_conv: bool = False):
        super().__init__()
        self.out_channels = tuple(widths)
        self.levels = nn.ModuleList()
        previous = in_channels
        for i, width in enumerate(self.out_channels):
            block = double_conv(previous, width, separable=i >= separable_from)
            if i == 0 and separable_from == 0 and full_input_conv:
                # replaces the block just built, whose random draws stay: runs trained so reproduce
                block = nn.Sequential(conv_bn_relu(previous, width), separable_bn_relu(width, width))
            self.levels.append(block if i == 0 else nn.Sequential(nn.MaxPool2d(2), block))
            previous = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class DecoderStage(nn.Module):
    """Reduce channels (1x1, at low resolution: cheap), upsample x2, concat the skip, double conv."""

    def __init__(self, deep_ch: int, skip_ch: int, separable: bool):
        super().__init__()
        self.reduce = conv_bn_relu(deep_ch, skip_ch, kernel=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.fuse = double_conv(2 * skip_ch, skip_ch, separable=separable)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(self.reduce(deep)), skip], dim=1))


class Decoder(nn.Module):
    """Encoder features (shallow → deep) → full-resolution feature map with `out_channels`."""

    def __init__(self, encoder_channels: Sequence[int], separable_from: int):
        super().__init__()
        chans = tuple(encoder_channels)
        # stages[k] merges level k+1 into level k; run deep → shallow.
        self.stages = nn.ModuleList(
            DecoderStage(chans[i + 1], chans[i], separable=i >= separable_from)
            for i in range(len(chans) - 1)
        )
        self.out_channels = chans[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for i in range(len(self.stages) - 1, -1, -1):
            x = self.stages[i](x, features[i])
        return x


class PlaneHead(nn.Sequential):
    """Bottleneck features → plane logits: global average pool → dropout → linear."""

    def __init__(self, in_ch: int, num_planes: int, dropout: float):
        super().__init__(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_ch, num_planes)
        )


class MultiTaskUNet(nn.Module):
    """U-Net segmentation (`num_seg_classes`) + plane classification (`num_planes`).

    widths: channels per encoder level, shallow → deep (len-1 down-samplings).
    separable_from: encoder levels >= this use depthwise-separable convs (full 3x3 convs below).
    decoder_separable_from: the same for the decoder stages; default 0 (all separable), because
      the concat doubles the channels at full resolution, where a full 3x3 conv costs most.
    full_input_conv: with separable_from 0, the very first conv (on the image) stays a full 3x3.
    signed_features: the segmentation head reads the decoder's last features before their ReLU.
      Behind a ReLU, 8 full-resolution channels gave one class the all-zero code: the trained
      8-channel network drew a femur wherever all 8 were off, its femur lead there the head's
      bias, 1.6 logits in every frame (edge_fetal/train/EXPERIMENTS.md); signed features leave no
      such dead code, at no cost.
    The defaults give 1.52 GFLOP per 256² frame (`count_gflops`).
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        separable_from: int = 2,
        decoder_separable_from: int = 0,
        full_input_conv: bool = False,
        signed_features: bool = False,
        num_seg_classes: int = len(SEG_CLASSES),
        num_planes: int = len(PLANE_CLASSES),
        dropout: float = 0.2,
    ):
        super().__init__()
        widths = tuple(widths)
        if len(widths) < 2 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be >= 2 positive ints, got {widths!r}")
        for name, value in (("separable_from", separable_from),
                            ("decoder_separable_from", decoder_separable_from)):
            if not 0 <= value <= len(widths):
                raise ValueError(f"{name} must be in [0, {len(widths)}], got {value}")
        if num_seg_classes < 2 or num_planes < 2:
            raise ValueError(f"need >= 2 classes per head, got {num_seg_classes}, {num_planes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_norm = nn.BatchNorm2d(1, affine=False)  # learns the data's mean/std; folds away
        self.encoder = Encoder(widths, separable_from, full_input_conv=full_input_conv)
        self.decoder = Decoder(self.encoder.out_channels, decoder_separable_from)
        if signed_features:
            last_block = self.decoder.stages[0].fuse[-1]
            last_block[-1] = nn.Identity()  # its final ReLU; nothing random is drawn, so seeds still reproduce
        self.seg_head = nn.Conv2d(self.decoder.out_channels, num_seg_classes, 1)
        self.plane_head = PlaneHead(self.encoder.out_channels[-1], num_planes, dropout)
        self.size_multiple = 2 ** (len(widths) - 1)

    def forward(self, image: torch.Tensor) -> MultiTaskOutput:
        h, w = image.shape[-2:]
        if not torch.jit.is_tracing() and (h % self.size_multiple or w % self.size_multiple):
            raise ValueError(f"H and W must be multiples of {self.size_multiple}, got {tuple(image.shape)}")
        features = self.encoder(self.input_norm(image))
        return MultiTaskOutput(self.seg_head(self.decoder(features)), self.plane_head(features[-1]))


def offset_seg_logit(model: MultiTaskUNet, class_name: str, offset: float) -> None:
    """Add `offset` to one segmentation class's logit (the segmentation head's bias), in place.

    A positive offset moves that class's outline outward, a negative one inward. It calibrates
    where the outline sits without changing the graph: the Dice term of the training loss pushes
    the head outline outward (train/EXPERIMENTS.md), and an offset chosen on frames outside the
    reported sets takes that back.
    """
    if class_name not in SEG_CLASSES or class_name == "background":
        raise ValueError(f"no structure class {class_name!r}; choose one of {SEG_CLASSES[1:]}")
    with torch.no_grad():
        model.seg_head.bias[SEG_CLASSES.index(class_name)] += offset


class ExportWrapper(nn.Module):
    """The deployed graph: `image` → (`seg_labels` uint8 [N,H,W], `plane_logits` float32 [N,P]).

    ArgMax and the cast sit in the graph, so a GPU copies back labels, not class maps.
    label_dtype: uint8 (checked in ONNX Runtime); torch.int32 for a runtime without uint8 casts.
    """

    def __init__(self, model: MultiTaskUNet, label_dtype: torch.dtype = torch.uint8):
        super().__init__()
        if label_dtype not in (torch.uint8, torch.int32, torch.int64):
            raise ValueError(f"label_dtype must be uint8, int32 or int64, got {label_dtype}")
        self.model = model
        self.label_dtype = label_dtype

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seg_logits, plane_logits = self.model(image)
        return seg_logits.argmax(dim=1).to(self.label_dtype), plane_logits.float()


def count_gflops(model: nn.Module, size: int | tuple[int, int] = 256, in_channels: int = 1) -> float:
    """GFLOP of one `[1,in_channels,H,W]` forward (size: S for S², or (H, W)): 2 x MACs of Conv2d and Linear layers.

    Bias, BN, ReLU, pooling and resize are not counted (a few % of the total).
    """
    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            h, w = (size, size) if isinstance(size, int) else size
            model(torch.zeros(1, in_channels, h, w))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return 2 * macs / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
