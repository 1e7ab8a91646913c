"""Checkpoint save/load round trips and the errors users see for bad checkpoints."""
import json

import pytest
import torch

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from dpiqa_cli.models.registry import get_spec


@pytest.mark.parametrize("name", ["tiny-student", "tiny-teacher"])
def test_save_load_round_trip_is_bit_identical(tmp_path, name):
    torch.manual_seed(3)
    model = get_spec(name).build().eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors", info={"dataset": "koniq", "metrics": {"srcc": 0.5}})
    loaded, config = load_checkpoint(path)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x)[0], loaded(x)[0])
    assert config["model"] == name and config["dataset"] == "koniq" and len(config["sha256"]) == 64
    assert config["dpiqa_version"] and config["arch"]["feat_size"] == 8
    if name == "tiny-teacher":
        assert config["prompts"] == "paper" and "prompt_embeds" in b


def test_fp16_checkpoint_loads_as_fp32(tmp_path):
    model = get_spec("tiny-student").build().eval()
    path = save_checkpoint(model, tmp_path / "h.safetensors", dtype=torch.float16)
    loaded, config = load_checkpoint(path)
    assert config["dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    w = model.regressor.fc1.weight
    assert torch.allclose(loaded.regressor.fc1.weight, w.half().float())
    # a loaded config passed back as `info`: the new file's own facts win over the stale ones
    again = save_checkpoint(loaded, tmp_path / "f.safetensors", info=config)
    _, config2 = load_checkpoint(again)  # sha256 verified on load
    assert config2["dtype"] == "float32" and config2["sha256"] != config["sha256"]


def test_errors_are_one_line(tmp_path):
    with pytest.raises(DpiqaError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    model = get_spec("tiny-student").build()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    blob = bytearray(path.read_bytes())
    blob[-10:] = b"0123456789"
    path.write_bytes(bytes(blob))
    with pytest.raises(DpiqaError, match="corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"garbage")
    with pytest.raises(DpiqaError, match="not a readable safetensors"):
        load_checkpoint(path, verify=False)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(DpiqaError, match="unreadable"):
        load_checkpoint(path)
    with pytest.raises(DpiqaError, match="import-weights"):
        load_checkpoint(tmp_path / "x.pth")


def test_config_pointing_at_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(get_spec("tiny-student").build(), tmp_path / "m.safetensors")
    cfg = json.loads(path.with_suffix(".json").read_text())
    cfg["arch"]["hidden"] = 64
    path.with_suffix(".json").write_text(json.dumps(cfg))
    with pytest.raises(DpiqaError, match="does not match"):
        load_checkpoint(path, verify=False)


def test_load_model_resolves_names_and_kinds(tmp_path):
    a = load_model("tiny-student").model
    b = load_model("tiny-student").model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    path = save_checkpoint(get_spec("tiny-teacher").build(), tmp_path / "t.safetensors")
    assert load_model(str(path)).spec.name == "tiny-teacher"
    with pytest.raises(DpiqaError, match="holds a teacher"):
        load_model("tiny-student", weights=path)
    with pytest.raises(DpiqaError, match="no weights for 'teacher'"):
        load_model("teacher")
    with pytest.raises(DpiqaError, match="unknown model"):
        load_model("nope")


def test_models_command_lists_the_registry(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    for name in ("teacher", "student", "student-lite0", "tiny-teacher", "tiny-student"):
        assert name in out
    assert "81.01 M" in out and "1,188.31 M" in out


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("dpiqa ")


def test_average_checkpoints_is_the_mean_of_the_weights(tmp_path):
    from dpiqa_cli.models.checkpoint import average_checkpoints

    paths, states = [], []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        m = get_spec("tiny-student").build().eval()
        states.append(m.state_dict())
        paths.append(save_checkpoint(m, tmp_path / f"epoch-{seed}.safetensors", info={"epoch": seed}))
    avg, config = average_checkpoints(paths)
    got = avg.state_dict()
    for k, v in got.items():
        if v.is_floating_point():
            assert torch.allclose(v, sum(s[k] for s in states) / 3, atol=1e-6), k
        else:
            assert torch.equal(v, states[-1][k]), k
    assert config["epoch"] == 3 and config["averaged_from"] == [str(p) for p in paths]
    with torch.inference_mode():  # a working model, not just a state dict
        assert torch.isfinite(avg(torch.rand(1, 3, 64, 64))[0]).all()

    other = save_checkpoint(get_spec("tiny-teacher").build(), tmp_path / "t.safetensors")
    with pytest.raises(DpiqaError, match="different models"):
        average_checkpoints([paths[0], other])
    with pytest.raises(DpiqaError, match="nothing to average"):
        average_checkpoints([])
