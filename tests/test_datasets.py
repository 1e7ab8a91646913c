"""Every reader on a miniature copy of its dataset's real layout (.mat, .xlsx, txt, csv; tiny generated PNG/JPEG
files — the readers only check that they exist)."""
import numpy as np
import pandas as pd
import pytest
from scipy import io

from dpiqa_cli.data.catalog import dataset_info
from dpiqa_cli.data.datasets import read_dataset
from dpiqa_cli.errors import DpiqaError


def touch(root, rels):
    for r in rels:
        p = root / r
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\x89PNG fake")  # existence is all a reader checks


def cell(names):
    a = np.empty((1, len(names)), dtype=object)
    for i, n in enumerate(names):
        a[0, i] = np.array([n])
    return a


def test_koniq(tmp_path):
    names = [f"{i}.jpg" for i in range(6)]
    sets = ["training", "training", "validation", "test", "test", "training"]
    pd.DataFrame({"image_name": names, "c1": 1, "c2": 1, "c3": 1, "c4": 1, "c5": 1, "c_total": 5,
                  "MOS": [10, 20, 30, 40, 50, 90], "SD": 0.5, "set": sets}).to_csv(tmp_path / "koniq10k_distributions_sets.csv", index=False)
    touch(tmp_path, [f"1024x768/{n}" for n in names])
    df = read_dataset("koniq10k", tmp_path)
    assert df["id"].tolist() == [f"1024x768/{n}" for n in names]
    assert df["mos"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.9])
    assert df["split"].tolist() == ["train", "train", "val", "test", "test", "train"]
    assert df.attrs["scale"] == {"name": "koniq", "min": 0.0, "max": 100.0, "lower_better": False}
    assert all(p.startswith(str(tmp_path)) for p in df["path"])


def test_clive_drops_training_images(tmp_path):
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["10.JPG", "11.JPG", "12.JPG"]
    (tmp_path / "Data").mkdir()
    io.savemat(tmp_path / "Data/AllImages_release.mat", {"AllImages_release": cell(names).T})
    io.savemat(tmp_path / "Data/AllMOS_release.mat", {"AllMOS_release": np.array([[50.0] * 7 + [20.0, 60.0, 80.0]])})
    touch(tmp_path, ["Images/10.JPG", "Images/11.JPG", "Images/12.JPG"])
    df = read_dataset("livec", tmp_path)
    assert df["id"].tolist() == ["Images/10.JPG", "Images/11.JPG", "Images/12.JPG"]
    assert df["mos"].tolist() == pytest.approx([0.2, 0.6, 0.8])


def test_spaq_xlsx(tmp_path):
    (tmp_path / "Annotations").mkdir()
    pd.DataFrame({"Image name": ["00001.jpg", "00002.jpg", "00003.jpg"], "MOS": [25.0, 50.0, 75.0],
                  "Brightness": [1, 2, 3]}).to_excel(tmp_path / "Annotations/MOS and Image attribute scores.xlsx", index=False)
    touch(tmp_path, [f"TestImage/0000{i}.jpg" for i in (1, 2, 3)])
    df = read_dataset("spaq", tmp_path)
    assert df["mos"].tolist() == pytest.approx([0.25, 0.5, 0.75]) and df["mos_raw"].tolist() == [25, 50, 75]


def test_livefb(tmp_path):
    pd.DataFrame({"name": ["voc/a.jpg", "AVA/b.jpg", "EE/c.jpg"], "mos": [70.0, 60.0, 40.0], "is_valid": [0, 0, 1]}
                 ).to_csv(tmp_path / "labels_image.csv", index=False)
    touch(tmp_path, ["database/voc/a.jpg", "database/AVA/b.jpg", "database/EE/c.jpg"])
    df = read_dataset("flive", tmp_path)
    assert df["id"].tolist()[1] == "database/AVA/b.jpg" and df["mos"].iloc[0] == pytest.approx(0.7)


def test_live_dmos_flipped_and_references_dropped(tmp_path):
    counts = {"jp2k": 2, "jpeg": 1, "wn": 1, "gblur": 1, "fastfading": 1}
    rels, refs = [], []
    for folder, n in counts.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "info.txt").write_text("".join(f"bikes.bmp img{i}.bmp 1.0\n" for i in range(1, n + 1)))
        rels += [f"{folder}/img{i}.bmp" for i in range(1, n + 1)]
        refs += ["bikes.bmp" if i % 2 else "house.bmp" for i in range(1, n + 1)]
    dmos = np.array([[10.0, 0.0, 60.0, 30.0, 90.0, 45.0]])
    orgs = np.array([[0, 1, 0, 0, 0, 0]])  # the second jp2k image is a reference: dropped
    io.savemat(tmp_path / "dmos.mat", {"dmos": dmos, "orgs": orgs})
    io.savemat(tmp_path / "refnames_all.mat", {"refnames_all": cell(refs)})
    touch(tmp_path, rels)
    df = read_dataset("live", tmp_path)
    assert len(df) == 5 and "jp2k/img2.bmp" not in df["id"].tolist()
    assert df["mos"].tolist() == pytest.approx([0.9, 0.4, 0.7, 0.1, 0.55])  # 1 - dmos/100: lower DMOS = better
    assert np.corrcoef(df["mos"], df["mos_raw"])[0, 1] < 0
    assert df.attrs["scale"]["lower_better"] is True and df["ref"].iloc[0] == "bikes.bmp"
    assert df["type"].tolist() == ["jp2k", "jpeg", "wn", "gblur", "fastfading"]


def test_csiq_xlsx_and_txt(tmp_path):
    rows = pd.DataFrame({"image": ["1600", "1600", "aerial_city"], "dst_idx": [1, 2, 3],
                         "dst_type": ["noise", "jpeg 2000", "blur"], "dst_lev": [1, 3, 2], "dmos_std": 0.1,
                         "dmos": [0.1, 0.5, 0.8]})
    rows.to_excel(tmp_path / "csiq.DMOS.xlsx", sheet_name="all_by_image", index=False)
    rels = ["dst_imgs/awgn/1600.AWGN.1.png", "dst_imgs/jpeg2000/1600.jpeg2000.3.png", "dst_imgs/blur/aerial_city.BLUR.2.png"]
    touch(tmp_path, rels)
    df = read_dataset("csiq", tmp_path)
    assert df["id"].tolist() == rels
    assert df["mos"].tolist() == pytest.approx([0.9, 0.5, 0.2])  # DMOS 0-1 flipped
    assert df["ref"].tolist() == ["1600", "1600", "aerial_city"] and df["level"].tolist() == [1, 3, 2]
    (tmp_path / "csiq.DMOS.xlsx").unlink()
    (tmp_path / "csiq.txt").write_text("".join(f"{r.split('/', 1)[1]} {d}\n" for r, d in zip(rels, [0.1, 0.5, 0.8])))
    df2 = read_dataset("csiq", tmp_path)
    assert df2["id"].tolist() == rels and df2["mos"].tolist() == pytest.approx([0.9, 0.5, 0.2])


def test_tid2013_case_and_types(tmp_path):
    (tmp_path / "mos_with_names.txt").write_text("5.4 i01_01_1.bmp\n3.6 i01_08_4.bmp\n1.8 i25_02_5.bmp\n")
    touch(tmp_path, ["distorted_images/i01_01_1.bmp", "distorted_images/I01_08_4.BMP", "distorted_images/i25_02_5.bmp"])
    df = read_dataset("tid2013", tmp_path)
    assert df["id"].tolist()[1] == "distorted_images/I01_08_4.BMP"  # found despite the case
    assert df["mos"].tolist() == pytest.approx([0.6, 0.4, 0.2])
    assert df["ref"].tolist() == ["I01", "I01", "I25"] and df["type"].tolist() == [1, 8, 2]


def test_kadid_higher_better(tmp_path):
    pd.DataFrame({"dist_img": ["I01_01_01.png", "I01_01_05.png", "I02_03_02.png"], "ref_img": ["I01.png", "I01.png", "I02.png"],
                  "dmos": [4.6, 1.4, 3.0], "var": 0.1}).to_csv(tmp_path / "dmos.csv", index=False)
    touch(tmp_path, ["images/I01_01_01.png", "images/I01_01_05.png", "images/I02_03_02.png"])
    df = read_dataset("kadid10k", tmp_path)
    assert df["mos"].tolist() == pytest.approx([0.9, 0.1, 0.5])  # (dmos-1)/4, not flipped
    assert df.attrs["direction"] == "the kadid catalog entry"  # the catalog wins over the column name
    assert df["ref"].tolist() == ["I01", "I01", "I02"] and df["level"].tolist() == [1, 5, 2]


def test_generic_csv_options(tmp_path):
    pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "mos": [2.0, 4.0, 8.0], "ref": ["r1", "r1", "r2"],
                  "type": ["blur", "noise", "jpeg"], "level": [1, 2, 3]}).to_csv(tmp_path / "labels.csv", index=False)
    touch(tmp_path, ["a.png", "b.png", "c.png"])
    df = read_dataset("csv", tmp_path, mos_min=0, mos_max=10, lower_better=True)
    assert df["mos"].tolist() == pytest.approx([0.8, 0.6, 0.2])
    assert df["type"].tolist() == ["blur", "noise", "jpeg"] and df["ref"].tolist() == ["r1", "r1", "r2"]
    assert read_dataset("csv", tmp_path)["mos"].tolist() == pytest.approx([0.0, 1 / 3, 1.0])  # data range


def test_missing_images_error_and_skip(tmp_path):
    pd.DataFrame({"path": [f"{i}.png" for i in range(6)], "mos": range(6)}).to_csv(tmp_path / "l.csv", index=False)
    touch(tmp_path, ["0.png", "1.png"])
    with pytest.raises(DpiqaError, match=r"4 of 6 images .*2\.png, 3\.png, 4\.png.*--allow-missing"):
        read_dataset("csv", tmp_path)
    with pytest.warns(UserWarning, match="4 of 6"):
        df = read_dataset("csv", tmp_path, allow_missing=True)
    assert len(df) == 2 and df.attrs["missing"] == 4


def test_bad_inputs(tmp_path):
    with pytest.raises(DpiqaError, match="koniq10k_distributions_sets.csv not found"):
        read_dataset("koniq", tmp_path)
    pd.DataFrame({"img": ["a"], "score": [1]}).to_csv(tmp_path / "dmos.csv", index=False)
    with pytest.raises(DpiqaError, match="no column dist_img"):
        read_dataset("kadid", tmp_path)
    with pytest.raises(DpiqaError, match="unknown dataset"):
        read_dataset("imagenet", tmp_path)


def test_dataset_info():
    assert dataset_info("kadid10k")["synthetic"] and not dataset_info("koniq")["synthetic"]
    assert dataset_info("csiq")["milestones_teacher"] == [2, 4]
    assert dataset_info("clive")["milestones_student"] == [10, 25]
    assert dataset_info("live")["scale"]["lower_better"] is True


def test_generic_csv_reads_a_dmos_column_as_lower_better(tmp_path):
    pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "dmos": [10.0, 50.0, 90.0]}).to_csv(tmp_path / "l.csv", index=False)
    touch(tmp_path, ["a.png", "b.png", "c.png"])
    df = read_dataset("csv", tmp_path)
    assert df["mos"].tolist() == pytest.approx([1.0, 0.5, 0.0])  # flipped: the best image has the lowest DMOS
    assert df.attrs["scale"]["lower_better"] is True and df.attrs["direction"] == "column name 'dmos' (DMOS)"
    assert read_dataset("csv", tmp_path, lower_better=False)["mos"].tolist() == \
        pytest.approx([0.0, 0.5, 1.0])  # told otherwise
