"""PIQE and BRISQUE, the classic metrics the level benchmark puts beside the model (dpiqa_cli.evaluate.nr_metrics)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.evaluate import levels as L
from dpiqa_cli.evaluate import nr_metrics as N

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    d = tmp_path_factory.mktemp("astronaut")
    img = Image.fromarray(skimage_data.astronaut())
    img.save(d / "pristine.png")
    img.filter(ImageFilter.GaussianBlur(5)).save(d / "blurred.png")
    return [d / "pristine.png", d / "blurred.png"]


@pytest.mark.parametrize("name", ["piqe_scorer", "brisque_scorer"])
def test_scorer_is_finite_and_ranks_a_blurred_copy_below_the_photo(astronaut, name):
    pytest.importorskip("pypiqe" if name == "piqe_scorer" else "brisque")
    scorer = getattr(L, name)  # the level benchmark's own names
    clean, blurred = scorer(astronaut, workers=1)
    assert np.isfinite([clean, blurred]).all() and blurred < clean, (clean, blurred)
    assert scorer(astronaut) == pytest.approx([clean, blurred])  # the worker processes give the same


def test_brisque_is_the_packages_number(astronaut):
    """The float fix changes types, not values: the features are the package's own."""
    pytest.importorskip("brisque")
    model = N._brisque_model()
    rgb = np.asarray(Image.open(astronaut[0]).convert("RGB"))
    from skimage.color import rgb2gray

    feats = model.calculate_brisque_features(rgb2gray(rgb))
    assert feats.dtype == np.float64 and feats.shape == (18,)
    assert -N.brisque_scorer(astronaut[:1])[0] == pytest.approx(model.score(rgb))


@pytest.mark.parametrize("module, name, extra", [("brisque", "brisque_scorer", "brisque"),
                                                 ("libsvm", "brisque_scorer", "libsvm-official"),
                                                 ("pypiqe", "piqe_scorer", "pypiqe")])
def test_missing_package_is_one_line_naming_the_extra(monkeypatch, astronaut, module, name, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when it is not installed
    with pytest.raises(DpiqaError, match=rf"needs .*{extra}.*pip install -e '\.\[levels\]'") as info:
        getattr(N, name)(astronaut)
    assert "\n" not in str(info.value)
