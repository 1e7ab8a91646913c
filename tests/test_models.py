"""Architecture facts of the teacher and student (docs/design.md), on meta and tiny CPU builds."""

import pytest
import torch

from dpiqa_cli.models.registry import count_parameters, get_spec, list_specs


def test_full_teacher_parameter_count_on_meta():
    n = count_parameters(get_spec("teacher"))
    assert abs(n - 1_187.7e6) / 1_187.7e6 < 0.005, n


def test_full_student_parameter_count_is_exact():
    assert count_parameters(get_spec("student-b7")) == 81_012_185


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_stored_parameter_counts_are_the_counts_on_meta(spec):
    # `dpiqa models` prints the stored count without building anything: it must be the real one
    assert spec.params == count_parameters(spec)


def test_registry_entries_record_what_commands_need():
    names = {s.name for s in list_specs()}
    assert {"teacher", "student-b7", "student-lite0", "student-lite0.synth", "tiny-teacher", "tiny-student"} <= names
    for s in list_specs():
        assert s.input_size in (64, 512)
    # `student` is the default scorer: the bundled Lite0 checkpoint, not the paper's B7 architecture
    assert get_spec("student").name == "student-lite0.synth" and get_spec("student").weights
    assert get_spec("student-lite0.synth").arch == get_spec("student-lite0").arch


def test_score_direction_and_range_come_from_each_models_config(tmp_path):
    """Not the registry's: a calibrated or scaled checkpoint scores in [0, 1], random weights have no range,
    and a DMOS dataset's checkpoint still scores higher-is-better (its scale flips only the mos column)."""
    import json
    import math

    from dpiqa_cli.models.checkpoint_config import FORMAT
    from dpiqa_cli.models.resolve import resolve_model

    def ckpt(name: str, **config) -> str:
        (tmp_path / f"{name}.safetensors").write_bytes(b"")  # resolving reads the config only
        (tmp_path / f"{name}.json").write_text(json.dumps({"format": FORMAT, "model": "tiny-student", **config}))
        return str(tmp_path / f"{name}.safetensors")

    assert not hasattr(get_spec("student"), "score_range")
    unbounded = (-math.inf, math.inf)
    assert resolve_model("student").score_range == (0.0, 1.0)  # the bundled model: synthetic labels in [0, 1]
    assert resolve_model("tiny-student").score_range == unbounded
    assert resolve_model(ckpt("plain")).score_range == unbounded
    assert resolve_model(ckpt("cal", calibration={"kind": "logistic", "a": 2.0, "b": 0.0})).score_range == (0.0, 1.0)
    dmos = resolve_model(ckpt("dmos", mos_scale={"name": "live", "min": 0, "max": 100, "lower_better": True}))
    assert dmos.score_range == (0.0, 1.0) and dmos.lower_better is False


def test_real_size_shapes_on_meta():
    with torch.device("meta"):
        teacher = get_spec("teacher").build()
        x = torch.empty(2, 3, 512, 512)
        maps = teacher.up_block_maps(x)
        assert [tuple(m.shape[1:]) for m in maps] == [(1280, 16, 16), (1280, 32, 32), (640, 64, 64), (320, 64, 64)]
        adapter = [tuple(r.shape[1:]) for r in teacher.img_adapter(x)]
        assert adapter == [(320, 64, 64), (640, 32, 32), (1280, 16, 16), (1280, 8, 8)]
        score, feat = teacher(x)
        assert tuple(score.shape) == (2, 1) and tuple(feat.shape) == (2, 8, 64, 64)
        student = get_spec("student-b7").build()
        assert tuple(student.backbone.forward_features(x).shape) == (2, 2560, 16, 16)
        score, feat = student(x)
        assert tuple(score.shape) == (2, 1) and tuple(feat.shape) == (2, 8, 64, 64)
    assert get_spec("teacher").build.__self__.arch["prompts"] == "paper"
    assert teacher.prompt_embeds.shape == (495, 768)


def test_student_batchnorm_matches_torchvision():
    """torchvision's EfficientNet-B7 (the released student) uses BatchNorm eps 1e-3 and momentum 0.01; timm's
    defaults are 1e-5 and 0.1, which would update the running statistics ten times faster while distilling."""
    with torch.device("meta"):
        model = get_spec("student-b7").build()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and {m.eps for m in bns} == {1e-3} and {m.momentum for m in bns} == {0.01}
    # a training step moves the running mean by momentum x (batch mean - running mean)
    small = get_spec("tiny-student").build(bn_momentum=0.01).train()
    bn = next(m for m in small.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = {}
    bn.register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0].detach()))
    before = bn.running_mean.clone()
    small(torch.rand(4, 3, 64, 64))
    torch.testing.assert_close(bn.running_mean, 0.99 * before + 0.01 * seen["x"].mean(dim=(0, 2, 3)))


@pytest.mark.parametrize("name", ["tiny-teacher", "tiny-student"])
def test_tiny_models_build_and_run_deterministically(name):
    # no timing here: speed belongs in `dpiqa bench --speed` (a timed assertion failed on a loaded CI machine)
    spec = get_spec(name)
    model = spec.build().eval()
    x = torch.rand(3, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        s1, f1 = model(x)
        s2, f2 = model(x)
    assert s1.shape == (3, 1) and f1.shape == (3, 8, spec.feat_size, spec.feat_size)
    assert torch.equal(s1, s2) and torch.equal(f1, f2)


def test_tiny_teacher_up_block_maps_match_the_sd_topology():
    model = get_spec("tiny-teacher").build().eval()
    maps = model.up_block_maps(torch.rand(2, 3, 64, 64))
    # same pattern as SD at 512 px (1280@16, 1280@32, 640@64, 320@64), scaled to an 8x8 latent
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 2, 2), (64, 4, 4), (32, 8, 8), (32, 8, 8)]


@pytest.mark.parametrize("name", ["tiny-teacher", "tiny-student"])
def test_backward_gives_finite_grads_only_where_trainable(name):
    torch.manual_seed(0)
    model = get_spec(name).build().train()
    score, feat = model(torch.rand(4, 3, 64, 64))
    (score.square().mean() + feat.mean()).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    for n, p in frozen:
        assert p.grad is None, n
    if name == "tiny-teacher":
        # only the VAE, and the U-Net's output head that runs after the maps we read
        assert {n.split(".")[0] for n, _ in frozen} == {"vae"}.union({"unet"})
        assert {n.rsplit(".", 1)[0] for n, _ in frozen if n.startswith("unet.")} == {"unet.conv_norm_out", "unet.conv_out"}
        assert any(n.startswith("unet.") for n, _ in trainable)
        assert not model.vae.training  # the frozen VAE never switches to training mode


def test_teacher_uses_vae_mean_so_scores_are_deterministic_even_in_train_mode():
    model = get_spec("tiny-teacher").build().train()
    model.qfd.eval(), model.regressor.eval()
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(model.encode(x), model.encode(x))
    model.sample_latents = True  # the release's behaviour, available for training
    assert not torch.equal(model.encode(x), model.encode(x))


def test_prompt_sets_have_the_documented_sizes_and_order():
    from dpiqa_cli.models.prompts import build_prompts

    paper, release = build_prompts("paper"), build_prompts("release")
    assert len(paper) == 495 and len(release) == 1485 and len(set(release)) == 1485
    assert release[0] == "a photo of a animal with jpeg2000 compression artifacts, which is of bad quality"
    assert release[-1].endswith("other realistic artifacts, which is of perfect quality")
