"""DP-IQA losses: score loss = MSE + margin ranking; student loss adds feature MSE.

Margin convention: the margin is 0.25 * std(y) over the batch with Bessel's correction (`torch.std`'s
default, as the authors' PyTorch code computes it). Pairs with equal labels have sign 0 and contribute the
constant margin, exactly as the formula reads. A batch of one has no pairs: the ranking term is 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MARGIN_FACTOR = 0.25


def ranking_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean over i<j of max(0, -sign(y_i - y_j) * (p_i - p_j) + 0.25 * std(y)), vectorised via triu indices."""
    pred, y = pred.reshape(-1).float(), y.reshape(-1).float()
    n = pred.numel()
    if n < 2:
        return pred.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) alive
    i, j = torch.triu_indices(n, n, offset=1, device=pred.device)
    margin = MARGIN_FACTOR * y.std()  # labels carry no gradient
    return torch.clamp(-torch.sign(y[i] - y[j]) * (pred[i] - pred[j]) + margin, min=0).mean()


def score_loss(pred: torch.Tensor, y: torch.Tensor, rank: bool = True) -> torch.Tensor:
    """L_total(y, y_hat) = MSE + margin ranking (ranking optional: the authors' release switched it off)."""
    pred, y = pred.reshape(-1).float(), y.reshape(-1).float().to(pred.device)
    loss = F.mse_loss(pred, y)
    return loss + ranking_loss(pred, y) if rank else loss


def feature_loss(f_student: torch.Tensor, f_teacher: torch.Tensor) -> torch.Tensor:
    """MSE(F_quality, F_student); the teacher side never carries gradient."""
    return F.mse_loss(f_student.float(), f_teacher.detach().float().to(f_student.device))


def student_loss(pred: torch.Tensor, y: torch.Tensor, f_student: torch.Tensor, f_teacher: torch.Tensor,
                 rank: bool = True) -> torch.Tensor:
    """MSE(F_quality, F_student) + L_total(y, y_hat_student)."""
    return feature_loss(f_student, f_teacher) + score_loss(pred, y, rank)


def score_only_loss(rank: bool):
    """The loss of a model trained on scores alone (the teacher, or a student --no-teacher)."""
    def loss_fn(model, b):
        pred, _ = model(b["x"])
        loss = score_loss(pred, b["y"], rank)
        return loss, {"loss_score": loss.detach()}
    return loss_fn


def distill_loss(teacher, rank: bool):
    """The student's loss against the teacher's F_quality (live, or cached in the batch as `ft`)."""
    def loss_fn(model, b):
        if "ft" in b:
            ft = b["ft"]
        else:
            with torch.no_grad():
                _, ft = teacher(b["x"])
        pred, fs = model(b["x"])
        lf, ls = feature_loss(fs, ft), score_loss(pred, b["y"], rank)
        return lf + ls, {"loss_score": ls.detach(), "loss_feat": lf.detach()}
    return loss_fn
