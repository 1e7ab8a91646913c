"""`dpiqa train-teacher`: build the DP-IQA teacher (SD v1.5 weights for the real one; frozen VAE) and run the
shared loop on scores alone."""
from __future__ import annotations

from accelerate.utils import set_seed

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.registry import get_spec
from dpiqa_cli.train.loop import fit
from dpiqa_cli.train.losses import score_only_loss
from dpiqa_cli.train.options import TrainOptions
from dpiqa_cli.train.run import Run


def train_teacher(cfg: TrainOptions) -> dict:
    spec = get_spec(cfg.model)
    if spec.kind != "teacher":
        raise DpiqaError(f"--model {cfg.model} is a {spec.kind}; train-teacher trains a teacher")
    run = Run(cfg, spec.input_size)
    set_seed(cfg.seed)
    overrides = {"prompts": cfg.prompts}
    if cfg.sd_model:
        overrides["sd_model"] = cfg.sd_model
    net = spec.build(pretrained=not spec.name.startswith("tiny-"), **overrides)
    if cfg.grad_checkpointing:
        net.unet.enable_gradient_checkpointing()
    info = {"trainer": "train-teacher", "sd_model": cfg.sd_model, "prompts": cfg.prompts, "rank_loss": cfg.rank_loss,
            "grad_checkpointing": cfg.grad_checkpointing}
    return fit(run, net, score_only_loss(cfg.rank_loss), spec.arch_name, info)
