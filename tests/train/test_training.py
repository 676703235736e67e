"""Model, loss, augmentation and training loop on tiny data (64² frames, widths (4, 8, 16))."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from edge_fetal.model.loss import MultiTaskLoss, distillation_loss  # noqa: E402
from edge_fetal.model.unet import (  # noqa: E402
    ONNX_INPUT_NAMES,
    ONNX_OUTPUT_NAMES,
    ExportWrapper,
    MultiTaskOutput,
    MultiTaskUNet,
    count_gflops,
)
from edge_fetal.train.augment import Augmenter  # noqa: E402
from edge_fetal.train.config import AugmentConfig, TrainConfig, load_config  # noqa: E402
from edge_fetal.train.dataset import ArrayDataset, split_indices  # noqa: E402
from edge_fetal.train.loop import train  # noqa: E402

TINY = dict(widths=(4, 8, 16), separable_from=1)
SIZE = 64


def tiny_data(n: int = 12, seed: int = 0) -> ArrayDataset:
    """Ellipses (head), disks (abdomen), bars (femur), plain texture (other, no mask)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(20, 80, size=(n, SIZE, SIZE), dtype=np.uint8)
    labels = np.zeros((n, SIZE, SIZE), np.uint8)
    plane = np.arange(n) % 4
    for i in range(n):
        centre = tuple(int(v) for v in rng.integers(24, 40, size=2))
        if plane[i] == 0:
            cv2.ellipse(labels[i], centre, (14, 10), 0, 0, 360, 1, -1)
        elif plane[i] == 1:
            cv2.circle(labels[i], centre, 12, 2, -1)
        elif plane[i] == 2:
            cv2.line(labels[i], (12, centre[1]), (50, centre[1]), 3, 3)
        images[i][labels[i] > 0] = 200
    return ArrayDataset(images, labels, plane != 3, plane.astype(np.int64))


def tiny_config(tmp_path, name: str = "smoke", epochs: int = 2) -> TrainConfig:
    return TrainConfig.from_dict({
        "data": {"image_size": SIZE, "batch_size": 4},
        "model": {"widths": list(TINY["widths"]), "separable_from": TINY["separable_from"]},
        "optim": {"epochs": epochs, "lr": 1e-2},
        "run": {"name": name, "out_dir": str(tmp_path), "log_every": 1, "seed": 3, "autocast": "bf16"},
    })


SPLIT = (np.arange(8), np.arange(8, 12))  # 8 train frames / batch 4 → 2 steps per epoch


def test_forward_shapes_and_fixed_return_type():
    model = MultiTaskUNet(**TINY).eval()
    out = model(torch.rand(2, 1, SIZE, SIZE))
    assert isinstance(out, MultiTaskOutput)
    assert out.seg_logits.shape == (2, 4, SIZE, SIZE)
    assert out.plane_logits.shape == (2, 4)


@pytest.mark.parametrize("kwargs", [
    {"widths": (8,)}, {"widths": (8, 0)}, {"separable_from": 9}, {"dropout": 1.0}, {"num_planes": 1},
])
def test_bad_model_config_raises_at_construction(kwargs):
    with pytest.raises(ValueError):
        MultiTaskUNet(**{**TINY, **kwargs})


def test_gflop_counter_on_known_convs():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1))
    assert count_gflops(conv, size=32) == pytest.approx(2 * 32 * 32 * 8 * 9 / 1e9)
    depthwise = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8))
    assert count_gflops(depthwise, size=32) == pytest.approx(2 * 32 * 32 * (8 + 8 * 9) / 1e9)


def test_full_input_conv_keeps_a_full_first_conv_on_a_separable_level_0():
    def first_convs(model):
        return [m for m in model.encoder.levels[0].modules() if isinstance(m, torch.nn.Conv2d)][:2]

    separable = MultiTaskUNet(**{**TINY, "separable_from": 0})
    full_first = MultiTaskUNet(**{**TINY, "separable_from": 0, "full_input_conv": True})
    first, second = first_convs(full_first)
    assert (first.in_channels, first.out_channels, first.kernel_size, first.groups) == (1, 4, (3, 3), 1)
    assert second.groups == 4  # the level's second conv stays depthwise
    assert first_convs(separable)[0].groups == 1 and first_convs(separable)[0].out_channels == 1
    cheapest, plain = count_gflops(separable, SIZE), count_gflops(MultiTaskUNet(**TINY), SIZE)
    assert cheapest < count_gflops(full_first, SIZE) < plain
    assert full_first(torch.rand(1, 1, SIZE, SIZE)).seg_logits.shape == (1, 4, SIZE, SIZE)


def test_signed_features_reach_the_segmentation_head_and_keep_the_seeded_weights():
    def head_input(model, image):
        seen = []
        model.seg_head.register_forward_hook(lambda _module, args, _out: seen.append(args[0]))
        model(image)
        return seen[0]

    image = torch.rand(2, 1, SIZE, SIZE)
    torch.manual_seed(4)
    plain = MultiTaskUNet(**TINY).eval()
    torch.manual_seed(4)
    signed = MultiTaskUNet(**TINY, signed_features=True).eval()
    assert float(head_input(plain, image).min()) >= 0  # behind a ReLU
    assert float(head_input(signed, image).min()) < 0
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), signed.state_dict().values()))
    assert count_gflops(signed, SIZE) == pytest.approx(count_gflops(plain, SIZE), rel=1e-3)


def test_default_model_within_budget():
    assert 0.5 < count_gflops(MultiTaskUNet(), size=256) <= 2.0


def test_export_wrapper_outputs_labels_and_logits():
    model = MultiTaskUNet(**TINY).eval()
    image = torch.rand(3, 1, SIZE, SIZE)
    labels, plane_logits = ExportWrapper(model).eval()(image)
    assert labels.dtype == torch.uint8 and labels.shape == (3, SIZE, SIZE)
    assert plane_logits.dtype == torch.float32 and plane_logits.shape == (3, 4)
    assert torch.equal(labels.long(), model(image).seg_logits.argmax(1))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter, on purpose
def test_export_wrapper_onnx_round_trip(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    wrapper = ExportWrapper(MultiTaskUNet(**TINY)).eval()
    path = tmp_path / "tiny.onnx"
    dynamic = {name: {0: "batch"} for name in ONNX_INPUT_NAMES + ONNX_OUTPUT_NAMES}
    torch.onnx.export(wrapper, (torch.rand(1, 1, SIZE, SIZE),), str(path), dynamo=False, opset_version=17,
                      input_names=list(ONNX_INPUT_NAMES), output_names=list(ONNX_OUTPUT_NAMES),
                      dynamic_axes=dynamic)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]  # one file, weights inside
    image = np.random.default_rng(0).random((2, 1, SIZE, SIZE), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, plane_logits = session.run(None, {"image": image})
    assert labels.dtype == np.uint8 and labels.shape == (2, SIZE, SIZE)
    with torch.no_grad():
        ref_labels, ref_logits = (t.numpy() for t in wrapper(torch.from_numpy(image)))
    assert (labels == ref_labels).mean() > 0.999
    np.testing.assert_allclose(plane_logits, ref_logits, atol=1e-4)


def test_loss_ignores_samples_without_mask():
    torch.manual_seed(0)
    loss_fn = MultiTaskLoss(seg_weight=1.0, plane_weight=0.5)
    seg = torch.randn(2, 4, 16, 16, requires_grad=True)
    plane = torch.randn(2, 4, requires_grad=True)
    target = torch.randint(0, 4, (2, 16, 16))
    has_mask = torch.tensor([True, False])
    planes = torch.tensor([0, 3])
    terms = loss_fn(seg, plane, target, has_mask, planes)
    terms.total.backward()
    assert seg.grad[1].abs().max() == 0 and seg.grad[0].abs().max() > 0
    other = target.clone()
    other[1] = 3 - other[1]  # a different (ignored) mask for the unmasked sample
    assert torch.equal(loss_fn(seg, plane, other, has_mask, planes).total, terms.total)

    with torch.no_grad():
        none = loss_fn(seg, plane, target, torch.tensor([False, False]), planes)
    assert float(none.seg_ce) == 0.0 and float(none.dice) == 0.0
    assert torch.isfinite(none.total) and float(none.total) == pytest.approx(0.5 * float(none.plane_ce))


def test_dice_weight_scales_only_the_dice_term():
    torch.manual_seed(1)
    seg, plane = torch.randn(2, 4, 16, 16), torch.randn(2, 4)
    args = (torch.randint(0, 4, (2, 16, 16)), torch.tensor([True, True]), torch.tensor([0, 2]))
    full = MultiTaskLoss(plane_weight=0.5)(seg, plane, *args)
    ce_only = MultiTaskLoss(plane_weight=0.5, dice_weight=0.0)(seg, plane, *args)
    assert float(full.dice) > 0.1 and float(ce_only.dice) == pytest.approx(float(full.dice))
    assert float(ce_only.total) == pytest.approx(float(full.seg_ce) + 0.5 * float(full.plane_ce))
    assert float(full.total) == pytest.approx(float(ce_only.total) + float(full.dice))
    with pytest.raises(ValueError, match="loss.dice_weight"):
        TrainConfig.from_dict({"loss": {"dice_weight": -1.0}})


def test_distillation_loss_is_zero_for_the_teacher_itself_and_grows_with_the_gap():
    torch.manual_seed(2)
    teacher = torch.randn(2, 4, 16, 16)
    near, far = teacher + 0.1 * torch.randn_like(teacher), teacher + 1.0 * torch.randn_like(teacher)
    for temperature in (1.0, 2.0):
        assert float(distillation_loss(teacher, teacher, temperature)) == pytest.approx(0.0, abs=1e-6)
        assert 0 < float(distillation_loss(near, teacher, temperature)) < float(distillation_loss(far, teacher, temperature))
    with pytest.raises(ValueError, match="differ in shape"):
        distillation_loss(teacher[:, :3], teacher)


def test_config_takes_a_distillation_weight_only_with_a_teacher():
    with pytest.raises(ValueError, match="run.teacher"):
        TrainConfig.from_dict({"loss": {"distill_weight": 1.0}})
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig.from_dict({"run": {"teacher": "runs/wide/last.pt"}})
    with pytest.raises(ValueError, match="distill_temperature"):
        TrainConfig.from_dict({"loss": {"distill_weight": 1.0, "distill_temperature": 0.0},
                               "run": {"teacher": "runs/wide/last.pt"}})


def _gap_to(teacher_checkpoint: Path, student_checkpoint: Path, data: ArrayDataset) -> float:
    """Mean distillation loss of a student's segmentation logits against a teacher's, on `data`."""
    from edge_fetal.model.load import load_checkpoint_model

    images = torch.from_numpy(data.images[:, None].astype(np.float32) / 255)
    with torch.no_grad():
        teacher, student = (load_checkpoint_model(p)[0](images).seg_logits for p in (teacher_checkpoint, student_checkpoint))
    return float(distillation_loss(student, teacher))


def test_a_narrower_student_learns_from_a_wider_teacher(tmp_path):
    data = tiny_data()
    teacher = train(tiny_config(tmp_path, "teacher", epochs=1), data, split=SPLIT, log=lambda _: None) / "last.pt"
    alone = _config_with(tiny_config(tmp_path, "alone"), model={"widths": [2, 8, 16]})
    taught = _config_with(alone, loss={"distill_weight": 20.0}, run={"name": "taught", "teacher": str(teacher)})
    lines: list[str] = []
    taught_dir = train(taught, data, split=SPLIT, log=lines.append)
    alone_dir = train(alone, data, split=SPLIT, log=lambda _: None)
    assert any("learning also from the teacher" in line for line in lines)
    history = [json.loads(line) for line in (taught_dir / "history.jsonl").read_text().splitlines()]
    assert history[-1]["train"]["distill"] > 0
    assert _gap_to(teacher, taught_dir / "last.pt", data) < _gap_to(teacher, alone_dir / "last.pt", data)
    missing = _config_with(taught, run={"name": "missing", "teacher": str(tmp_path / "nope.pt")})
    with pytest.raises(ValueError, match="run.teacher.*does not exist"):
        train(missing, data, split=SPLIT, log=lambda _: None)


def test_last_epochs_train_on_cross_entropy_alone_as_configured(tmp_path):
    cfg = _config_with(tiny_config(tmp_path, "ce_last"), loss={"cross_entropy_last_epochs": 1})
    run_dir = train(cfg, tiny_data(), split=SPLIT, log=lambda _: None)
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [h["dice_weight"] for h in history] == [1.0, 0.0]
    first, last = history[0]["train"], history[1]["train"]
    assert first["loss"] == pytest.approx(first["seg_ce"] + first["dice"] + first["plane_ce"], abs=1e-3)
    assert last["dice"] > 0.05  # still computed and logged, not trained on
    assert last["loss"] == pytest.approx(last["seg_ce"] + last["plane_ce"], abs=1e-3)
    with pytest.raises(ValueError, match="loss.cross_entropy_last_epochs"):
        _config_with(tiny_config(tmp_path), loss={"cross_entropy_last_epochs": 2})


def test_dice_near_zero_for_perfect_prediction():
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    target[0, 4:10, 4:10] = 2
    logits = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 50
    terms = MultiTaskLoss()(logits, torch.zeros(1, 4), target, torch.tensor([True]), torch.tensor([1]))
    assert float(terms.dice) < 1e-3 and float(terms.seg_ce) < 1e-3


def test_per_image_dice_counts_a_missed_small_head_as_much_as_a_large_one():
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[0, 1:15, 1:15] = 1  # a large head, segmented perfectly
    target[1, 7:9, 7:9] = 1  # a small head, missed entirely
    predicted = target.clone()
    predicted[1] = 0
    logits = torch.nn.functional.one_hot(predicted, 4).permute(0, 3, 1, 2).float() * 50
    args = (torch.zeros(2, 4), target, torch.tensor([True, True]), torch.tensor([0, 0]))
    pooled = MultiTaskLoss(dice_pooling="batch")(logits, *args).dice
    per_image = MultiTaskLoss(dice_pooling="image")(logits, *args).dice
    assert float(pooled) < 0.05  # 4 missed pixels of 200: hardly felt
    assert float(per_image) == pytest.approx(0.5, abs=1e-3)  # one image of two has Dice 0
    both = MultiTaskLoss(dice_pooling="both")(logits, *args).dice
    assert float(both) == pytest.approx(0.5 * (float(pooled) + float(per_image)))
    with pytest.raises(ValueError, match="dice_pooling"):
        MultiTaskLoss(dice_pooling="pixel")
    with pytest.raises(ValueError, match="loss.dice_pooling"):
        TrainConfig.from_dict({"loss": {"dice_pooling": "pixel"}})


def test_augment_keeps_shapes_and_labels_exact():
    data = tiny_data()
    augment = Augmenter(AugmentConfig(p_gamma=1, p_depth=1, p_rotate=1, p_flip=0.5, p_translate=1,
                                      p_speckle=1, p_shadow=1))
    rng = np.random.default_rng(0)
    for i in range(len(data.images)):
        for _ in range(3):
            image, label = augment(data.images[i], data.labels[i], rng)
            assert image.shape == label.shape == (SIZE, SIZE)
            assert image.dtype == label.dtype == np.uint8
            assert set(np.unique(label)) <= set(np.unique(data.labels[i])) | {0}


def test_dataset_augments_training_view_only():
    data = tiny_data()
    train_view = data.view(np.arange(4), augmenter=Augmenter())
    val_view = data.view(np.arange(4))
    assert torch.equal(val_view[1]["image"][0], torch.from_numpy(data.images[1] / 255.0).float())
    assert not torch.equal(train_view[1]["image"], val_view[1]["image"])
    assert torch.equal(train_view[1]["image"], train_view[1]["image"])  # seeded by (seed, epoch, row)
    sample = train_view[0]
    assert sample["image"].shape == (1, SIZE, SIZE) and sample["label"].dtype == torch.int64


def test_split_keeps_groups_together_and_covers_planes():
    plane = np.repeat(np.arange(4), 10)
    groups = np.arange(40) // 2
    train_rows, val_rows = split_indices(plane, groups, 0.25, seed=0)
    assert len(train_rows) + len(val_rows) == 40
    assert not set(groups[train_rows]) & set(groups[val_rows])
    assert set(plane[val_rows]) == {0, 1, 2, 3}


class _Interrupt(Exception):
    pass


def _train_one_epoch_of_two(cfg: TrainConfig, data: ArrayDataset) -> None:
    """Start a 2-epoch run and interrupt it once its first epoch is logged (checkpointed)."""
    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/2 "):
            raise _Interrupt
    with pytest.raises(_Interrupt):
        train(cfg, data, split=SPLIT, log=stop_after_first_epoch)


def test_training_checkpoints_and_resumes_exactly(tmp_path):
    data = tiny_data()
    full_dir = train(tiny_config(tmp_path, "full"), data, split=SPLIT, log=lambda _: None)
    for name in ("last.pt", "best.pt", "history.jsonl"):
        assert (full_dir / name).exists()
    history = [json.loads(line) for line in (full_dir / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert set(history[-1]["val"]) >= {"plane_acc", "dice", "mean_dice", "loss"}

    cfg = tiny_config(tmp_path, "resumed")
    _train_one_epoch_of_two(cfg, data)
    with pytest.raises(ValueError):
        train(cfg, data, split=SPLIT, log=lambda _: None)  # exists: must say resume
    resumed_dir = train(cfg, data, resume=True, log=lambda _: None)

    full = torch.load(full_dir / "last.pt", weights_only=True)
    resumed = torch.load(resumed_dir / "last.pt", weights_only=True)
    assert resumed["epoch"] == full["epoch"] == 2
    assert resumed["split"] == full["split"]
    for key, value in full["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=1e-6)
    assert len((resumed_dir / "history.jsonl").read_text().splitlines()) == 2


def test_resume_refuses_a_changed_model(tmp_path):
    data = tiny_data()
    train(tiny_config(tmp_path, "run", epochs=1), data, split=SPLIT, log=lambda _: None)
    changed = TrainConfig.from_dict({**tiny_config(tmp_path, "run", epochs=1).to_dict(),
                                     "model": {"widths": [4, 8, 32]}})
    with pytest.raises(ValueError, match="model"):
        train(changed, data, resume=True, log=lambda _: None)


def _config_with(cfg: TrainConfig, **sections) -> TrainConfig:
    raw = cfg.to_dict()
    for section, values in sections.items():
        raw[section] = {**raw[section], **values}
    return TrainConfig.from_dict(raw)


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    data = tiny_data()
    source_dir = train(tiny_config(tmp_path, "stage1", epochs=1), data, split=SPLIT, log=lambda _: None)
    source = torch.load(source_dir / "last.pt", weights_only=True)["model"]
    still = _config_with(tiny_config(tmp_path, "stage2", epochs=1), optim={"lr": 1e-9},
                         run={"name": "stage2", "seed": 5, "init_from": str(source_dir / "last.pt")})
    lines: list[str] = []
    tuned = torch.load(train(still, data, split=SPLIT, log=lines.append) / "last.pt", weights_only=True)["model"]
    fresh_cfg = _config_with(still, run={"name": "fresh", "init_from": ""})
    fresh = torch.load(train(fresh_cfg, data, split=SPLIT, log=lambda _: None) / "last.pt", weights_only=True)["model"]
    weights = [k for k, v in source.items() if v.is_floating_point() and "running" not in k]
    assert any("starting from the weights" in line for line in lines)
    for key in weights:
        torch.testing.assert_close(tuned[key], source[key], rtol=0, atol=1e-5)
    assert any(not torch.allclose(fresh[key], source[key], atol=1e-3) for key in weights)


def _drop_model_option(checkpoint_path: Path, option: str) -> None:
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    del checkpoint["config"]["model"][option]
    torch.save(checkpoint, checkpoint_path)


def test_a_checkpoint_saved_before_a_model_option_existed_still_resumes_and_fine_tunes(tmp_path):
    """Runs trained before `model.full_input_conv` was added lack the key in their checkpoints; they
    must still resume, and a second stage must still start from them (the option's default is what
    the code did then)."""
    data = tiny_data()
    stage1_cfg = tiny_config(tmp_path, "stage1")
    _train_one_epoch_of_two(stage1_cfg, data)
    _drop_model_option(tmp_path / "stage1" / "last.pt", "full_input_conv")
    stage1 = train(stage1_cfg, data, resume=True, log=lambda _: None) / "last.pt"
    assert torch.load(stage1, weights_only=True)["epoch"] == 2

    _drop_model_option(stage1, "full_input_conv")
    stage2 = _config_with(tiny_config(tmp_path, "stage2", epochs=1), run={"name": "stage2", "init_from": str(stage1)})
    lines: list[str] = []
    train(stage2, data, split=SPLIT, log=lines.append)
    assert any("starting from the weights" in line for line in lines)


def test_fine_tuning_refuses_another_architecture_or_a_missing_checkpoint(tmp_path):
    data = tiny_data()
    source_dir = train(tiny_config(tmp_path, "stage1", epochs=1), data, split=SPLIT, log=lambda _: None)
    wider = _config_with(tiny_config(tmp_path, "wider", epochs=1), model={"widths": [4, 8, 32]},
                         run={"name": "wider", "init_from": str(source_dir / "last.pt")})
    with pytest.raises(ValueError, match="architecture"):
        train(wider, data, split=SPLIT, log=lambda _: None)
    missing = _config_with(tiny_config(tmp_path, "missing", epochs=1),
                           run={"name": "missing", "init_from": str(tmp_path / "nope.pt")})
    with pytest.raises(ValueError, match="does not exist"):
        train(missing, data, split=SPLIT, log=lambda _: None)


def test_fine_tuning_refuses_the_inference_weights_shipped_beside_an_onnx_model(tmp_path):
    """Weights recovered from an ONNX file carry folded BatchNorms: training them as they are would
    change what the network computes, so a run must start from a training checkpoint."""
    from export.torch_weights import save_torch_weights
    from edge_fetal.model.unet import MultiTaskUNet

    cfg = tiny_config(tmp_path, "from_shipped", epochs=1)
    shipped = save_torch_weights(MultiTaskUNet(**cfg.to_dict()["model"]), cfg.to_dict(), tmp_path / "shipped.pt",
                                 "recovered from model.onnx")
    from_shipped = _config_with(cfg, run={"name": "from_shipped", "init_from": str(shipped)})
    with pytest.raises(ValueError, match="shipped beside an ONNX model"):
        train(from_shipped, tiny_data(), split=SPLIT, log=lambda _: None)


def test_config_refuses_an_input_box_off_the_network_stride():
    with pytest.raises(ValueError, match="multiples of the network's stride 16"):
        TrainConfig.from_dict({"data": {"input_hw": [170, 256]}})
    assert TrainConfig.from_dict({"data": {"input_hw": [176, 256]}}).data.input_box == (176, 256)
    assert TrainConfig.from_dict({}).data.input_box == (256, 256)


def test_config_loads_toml_and_rejects_unknown_keys(tmp_path):
    good = tmp_path / "c.toml"
    good.write_text('[model]\nwidths = [8, 16]\n[optim]\nlr = 1\n[run]\nname = "x"\n')
    cfg = load_config(good)
    assert cfg.model.widths == (8, 16) and cfg.optim.lr == 1.0 and cfg.run.name == "x"
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"model": {"width": [8, 16]}}))
    with pytest.raises(ValueError, match="width"):
        load_config(bad)


def test_config_extends_another_key_by_key(tmp_path):
    (tmp_path / "base.toml").write_text('[optim]\nlr = 0.5\nepochs = 7\n[run]\nname = "base"\n')
    (tmp_path / "exp").mkdir()
    child = tmp_path / "exp" / "child.toml"
    child.write_text('extends = "../base.toml"\n[optim]\nepochs = 2\n')
    cfg = load_config(child)
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.run.name) == (0.5, 2, "base")


@pytest.mark.parametrize("text, message", [
    ('extends = "missing.toml"\n', "does not exist"),
    ('extends = "loop.toml"\n', "leads back to itself"),
    ("extends = 3\n", "must name a config file"),
])
def test_config_extends_refusals_name_the_problem(tmp_path, text, message):
    config = tmp_path / "loop.toml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(config)


def test_every_recorded_recipe_loads_into_its_own_run_folder():
    """The shipped stages and every recorded experiment still read (their bases included), and no
    two of them would write over each other's run."""
    recipes = sorted((Path(__file__).resolve().parents[2] / "edge_fetal" / "train").glob("*.toml"))
    names = [load_config(recipe).run.name for recipe in recipes]
    assert len(recipes) >= 2 and len(set(names)) == len(names)


def test_train_command_names_a_bad_config_and_missing_data(tmp_path, capsys):
    from edge_fetal.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nwidth = [8, 16]\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "cannot use config" in capsys.readouterr().err
    nodata = tmp_path / "nodata.toml"
    nodata.write_text(f'[data]\nhc18_dir = "{tmp_path / "nowhere"}"\n')
    assert main(["train", "--config", str(nodata)]) == 2
    assert "HC18 data not found" in capsys.readouterr().err


def test_an_epoch_shows_real_heads_and_early_pregnancy_heads_as_often_as_configured():
    from edge_fetal.train.build_data import epoch_rows
    from edge_fetal.train.config import DataConfig

    # rows: 0 small real head, 1 large real head, 2 simulated, 3 small real head in validation
    is_val = np.array([False, False, False, True])
    is_real_head = np.array([True, True, False, True])
    true_hc_mm = np.array([80.0, 250.0, np.inf, 90.0])
    plain = epoch_rows(is_val, is_real_head, true_hc_mm, DataConfig(hc18_repeat=2))
    assert sorted(plain.tolist()) == [0, 0, 1, 1, 2]
    weighted = epoch_rows(is_val, is_real_head, true_hc_mm, DataConfig(hc18_repeat=2, hc18_small_head_repeat=2))
    assert sorted(weighted.tolist()) == [0, 0, 0, 0, 1, 1, 2]  # validation rows never train


def test_config_refuses_a_negative_small_head_repeat_naming_the_key(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[data]\nhc18_small_head_repeat = -1\n")
    with pytest.raises(ValueError, match="hc18_small_head_repeat"):
        load_config(config)


def test_simulated_early_pregnancy_heads_join_their_side_of_the_split_as_heads():
    from edge_fetal.train.build_data import _simulated_jobs
    from edge_fetal.train.config import DataConfig
    from edge_fetal.train.frame_jobs import make_frames

    cfg = DataConfig(input_hw=(176, 256), sim_train=(0, 0, 0, 0), sim_val=(0, 0, 0, 0),
                     sim_early_heads_train=2, sim_early_heads_val=1)
    made = list(make_frames(_simulated_jobs(cfg), workers=1))
    assert [job.is_val for job, _ in made] == [False, False, True]
    assert {job.plane for job, _ in made} == {"head"} and len({job.group for job, _ in made}) == 3  # each its own fetus
    for _, (image, labels) in made:
        assert labels.shape == image.shape == (176, 256) and set(np.unique(labels).tolist()) == {0, 1}


def test_config_refuses_a_negative_early_head_count_naming_the_key(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[data]\nsim_early_heads_train = -3\n")
    with pytest.raises(ValueError, match="sim_early_heads_train"):
        load_config(config)
