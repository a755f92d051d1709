"""Bad input: every error names the path expected and the DATASETS.md section, once."""
import os
import os.path as osp
import shutil

import pytest

from dataset_fixtures import build, make_tree, write_split_json

from datasets.common import DatasetNotFoundError, MissingImagesError, SplitFileError


def test_missing_dataset_folder_names_path_and_section(tmp_path):
    os.makedirs(tmp_path / "caltech101")  # a near-miss name
    with pytest.raises(DatasetNotFoundError) as e:
        build(tmp_path, "Caltech101")
    msg = str(e.value)
    assert str(tmp_path / "caltech-101") in msg
    assert 'DATASETS.md, section "Caltech101"' in msg
    assert "caltech101" in msg  # did-you-mean
    assert f"python -m datasets.check --root {tmp_path} Caltech101" in msg
    assert not osp.exists(tmp_path / "caltech-101")  # nothing created for a missing dataset


def test_missing_image_folder(tmp_path):
    t = make_tree("OxfordPets", tmp_path)
    shutil.rmtree(osp.join(t.dataset_dir, "images"))
    with pytest.raises(DatasetNotFoundError, match=r"image folder .*oxford_pets/images"):
        build(tmp_path, "OxfordPets")


def test_missing_split_file_and_annotations(tmp_path):
    t = make_tree("OxfordPets", tmp_path, with_split=False)
    os.remove(osp.join(t.dataset_dir, "annotations", "test.txt"))
    with pytest.raises(DatasetNotFoundError) as e:
        build(tmp_path, "OxfordPets")
    msg = str(e.value)
    assert osp.join(t.dataset_dir, "annotations", "test.txt") in msg
    assert t.split_path in msg and 'section "OxfordPets"' in msg


def test_dataset_without_raw_fallback_needs_its_split_file(tmp_path):
    t = make_tree("DescribableTextures", tmp_path, with_split=True)
    os.remove(t.split_path)
    shutil.rmtree(osp.join(t.dataset_dir, "images"))
    with pytest.raises(DatasetNotFoundError, match="images"):
        build(tmp_path, "DescribableTextures")


def test_eurosat_rgb_folder_hint(tmp_path):
    t = make_tree("EuroSAT", tmp_path)
    os.rename(osp.join(t.dataset_dir, "2750"), osp.join(t.dataset_dir, "EuroSAT_RGB"))
    with pytest.raises(DatasetNotFoundError, match="EuroSAT_RGB.*rename"):
        build(tmp_path, "EuroSAT")


def test_split_json_with_missing_files_reported_once_with_counts(tmp_path, capsys):
    t = make_tree("Food101", tmp_path)
    image_dir = osp.join(t.dataset_dir, "images")
    import json

    with open(t.split_path) as f:
        split = json.load(f)
    gone = [split["train"][0][0], split["train"][5][0], split["test"][1][0]]
    for rel in gone:
        os.remove(osp.join(image_dir, rel))
    with pytest.raises(MissingImagesError) as e:
        build(tmp_path, "Food101", num_shots=2)
    msg = str(e.value)
    n_train, n_test = len(split["train"]), len(split["test"])
    assert f"3 of {n_train + len(split['val']) + n_test} images" in msg
    assert f"train (from {t.split_path}): 2 of {n_train} missing" in msg
    assert f"test (from {t.split_path}): 1 of {n_test} missing" in msg
    assert "val" not in msg.split("First missing")[0].replace("val)", "")  # no line for a complete split
    for rel in gone:
        assert osp.join(image_dir, rel) in msg
    assert msg.count(osp.join(image_dir, gone[0])) == 1
    assert 'section "Food101"' in msg
    # nothing was cached from a broken split
    assert not os.listdir(osp.join(t.dataset_dir, "split_fewshot"))
    # the check can be switched off (the loader then names the first missing image)
    ds = build(tmp_path, "Food101", CHECK_FILES=False)
    assert len(ds.train_x) == n_train


def test_malformed_split_json(tmp_path):
    t = make_tree("DescribableTextures", tmp_path)
    with open(t.split_path, "w") as f:
        f.write('{"train": [["a.jpg", 0, "x"]], "val": [')
    with pytest.raises(SplitFileError, match="Cannot parse the split file"):
        build(tmp_path, "DescribableTextures")
    write_split_json(t.split_path, {"train": [], "test": []})
    with pytest.raises(SplitFileError, match='keys "train", "val", "test"'):
        build(tmp_path, "DescribableTextures")


def test_cache_from_a_moved_root_is_explained(tmp_path):
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    make_tree("DescribableTextures", old_root)
    build(old_root, "DescribableTextures", num_shots=2, seed=1)
    shutil.move(str(old_root), str(new_root))  # the pickle still holds old absolute paths
    cache = osp.join(new_root, "dtd", "split_fewshot", "shot_2-seed_1.pkl")
    with pytest.warns(UserWarning, match="written for another data root"):
        with pytest.raises(MissingImagesError) as e:
            build(new_root, "DescribableTextures", num_shots=2, seed=1)
    msg = str(e.value)
    assert f"train (from {cache})" in msg
    assert "Delete it and rerun" in msg
    os.remove(cache)
    ds = build(new_root, "DescribableTextures", num_shots=2, seed=1)
    assert all(d.impath.startswith(str(new_root)) for d in ds.train_x)


def test_corrupt_cache_names_the_file(tmp_path):
    t = make_tree("DescribableTextures", tmp_path)
    cache = osp.join(t.dataset_dir, "split_fewshot", "shot_2-seed_1.pkl")
    os.makedirs(osp.dirname(cache), exist_ok=True)
    with open(cache, "wb") as f:
        f.write(b"\x80\x05truncated")
    with pytest.raises(SplitFileError, match="shot_2-seed_1.pkl.*Delete it"):
        build(tmp_path, "DescribableTextures", num_shots=2, seed=1)


def test_unreadable_image_names_the_file(tmp_path):
    from dassl.utils import read_image

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(IOError, match="broken.jpg"):
        read_image(str(bad))
    with pytest.raises(IOError, match="nothere.jpg"):
        read_image(str(tmp_path / "nothere.jpg"))


def test_unknown_subsample_value(tmp_path):
    make_tree("DescribableTextures", tmp_path)
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES"):
        build(tmp_path, "DescribableTextures", subsample="novel")


def test_imagenet_variant_missing_folder(tmp_path):
    os.makedirs(tmp_path / "imagenet-adversarial")
    with pytest.raises(DatasetNotFoundError, match=r"imagenet-adversarial/imagenet-a.*ImageNetA"):
        build(tmp_path, "ImageNetA")


def test_ood_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"ood_data/iNaturalist.*DATASETS.md"):
        build(tmp_path, "OODiNaturalist")
