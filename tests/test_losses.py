"""Score/student losses against a naive double-loop reference of docs/design.md's formula."""
from __future__ import annotations

import torch

from dpiqa_cli.train.losses import ranking_loss, score_loss, student_loss


def naive_score_loss(pred, y, rank=True):
    pred, y = pred.reshape(-1).double(), y.reshape(-1).double()
    n = len(y)
    mse = sum((pred[i] - y[i]) ** 2 for i in range(n)) / n
    if not rank or n < 2:
        return mse
    margin = 0.25 * y.std(unbiased=True)
    terms = [max(0.0, float(-torch.sign(y[i] - y[j]) * (pred[i] - pred[j]) + margin))
             for i in range(n) for j in range(i + 1, n)]
    return mse + sum(terms) / len(terms)


def test_score_loss_matches_reference():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 7, 24):
        pred, y = torch.rand(n, 1, generator=g), torch.rand(n, generator=g)
        y[0] = y[1]  # a tie: sign 0, the constant margin term
        for rank in (True, False):
            assert torch.allclose(score_loss(pred, y, rank).double(), torch.as_tensor(naive_score_loss(pred, y, rank)),
                                  atol=1e-6)


def test_batch_of_one_is_safe_and_differentiable():
    pred = torch.rand(1, 1, requires_grad=True)
    loss = score_loss(pred, torch.tensor([0.3]))
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert float(ranking_loss(pred, torch.tensor([0.3]))) == 0.0


def test_student_loss_adds_feature_mse_and_keeps_teacher_out_of_the_graph():
    g = torch.Generator().manual_seed(1)
    pred, y = torch.rand(5, 1, generator=g), torch.rand(5, generator=g)
    fs = torch.rand(5, 8, 4, 4, generator=g, requires_grad=True)
    ft = torch.rand(5, 8, 4, 4, generator=g, requires_grad=True)
    loss = student_loss(pred, y, fs, ft)
    expected = torch.mean((fs - ft) ** 2).double() + naive_score_loss(pred, y)
    assert torch.allclose(loss.double(), expected, atol=1e-6)
    loss.backward()
    assert fs.grad is not None and ft.grad is None
