"""Mini-world: the world and its writer, the shipped ``miniworld`` backbone, and base-to-novel through the scripts.

The slow part (one module fixture, ~1 min on 2 cores) renders a small MiniWorld split, runs zero-shot CLIP and a
short IVLP training through ``scripts/`` with the shipped checkpoint and tabulates them with ``extract_log``.
"""
import glob
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import REPO
from miniworld import world as W
from miniworld.write import split_file, write_miniworld

CKPT = osp.join(REPO, "clip", "weights", "miniworld.pt")
SMALL = {"train": 8, "val": 2, "test": 10}  # per class: 20 x 10 = 200 test images per half
# short runs on the 48x48 backbone, data loaded in-process
FAST = ["MODEL.BACKBONE.NAME", "miniworld", "INPUT.SIZE", "(48, 48)", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TEST.BATCH_SIZE", "200", "DATASET.NUM_SHOTS", "8"]
IVLP_SHORT = ["OPTIM.MAX_EPOCH", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "TRAIN.PRINT_FREQ", "40"]
ZS_MIN = 30.0  # zero-shot accuracy threshold on either half (chance: 5%; measured ~55% base, ~51% new)
IVLP_GAIN = 10.0  # a 2-epoch IVLP run must raise base accuracy over zero-shot by this much (measured: +21)


# ------------------------------------------------------------------------------------------------ world
def test_classes_are_forty_distinct_phrases_of_the_worlds_words():
    names = W.class_names()
    assert len(names) == 40 and len(set(names)) == 40
    vocab = set(W.PATTERNS) | set(W.COLOURS) | set(W.SHAPES)
    assert all(len(n.split()) == 3 and set(n.split()) <= vocab for n in names)
    assert W.new_triples() == W.class_triples()[20:]


def test_new_classes_never_occur_in_pretraining():
    rng = np.random.default_rng(0)
    drawn = set(W.pretrain_triples(rng, 20000, W.new_triples()))
    assert not drawn & set(W.new_triples())
    assert set(W.class_triples()[:20]) <= drawn  # base triples are seen
    assert len(drawn) == len(W.all_triples()) - 20


def test_rendering_is_deterministic_and_styles_differ():
    a = W.class_images([1, 2], list(range(6)), W.DOWNSTREAM_STYLE)
    b = W.class_images([1, 2], list(range(6)), W.DOWNSTREAM_STYLE)
    assert a.shape == (6, W.IMAGE_SIZE, W.IMAGE_SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    for style in W.STYLES:
        c = W.class_images([1, 2], list(range(6)), style)
        assert c.std() > 5, style  # not blank
    assert W.DOWNSTREAM_STYLE not in W.PRETRAIN_STYLES
    assert not set(W.SHIFT_STYLES) & set(W.PRETRAIN_STYLES)
    imgs, caps = W.pretrain_batch([0, 0], 8)
    assert imgs.shape[0] == 8 and all(c.endswith(".") and len(c.split()) >= 3 for c in caps)


def test_writer_coop_layout_cache_and_dataset(tmp_path):
    from dataset_fixtures import build

    counts = {"train": 2, "val": 1, "test": 1}
    d = write_miniworld(str(tmp_path), counts=counts, log=lambda s: None)
    with open(osp.join(d, split_file("miniworld"))) as f:
        split = json.load(f)
    assert {k: len(v) for k, v in split.items()} == {"train": 80, "val": 40, "test": 40}
    rel, label, name = split["train"][0]
    assert osp.isfile(osp.join(d, "images", rel)) and name == W.class_names()[label]
    t0 = time.time()
    write_miniworld(str(tmp_path), counts=counts, log=lambda s: None)  # cached
    assert time.time() - t0 < 1
    base = build(str(tmp_path), "MiniWorld", num_shots=1, subsample="base")
    new = build(str(tmp_path), "MiniWorld", num_shots=1, subsample="new")
    assert base.classnames == W.class_names()[:20] and new.classnames == W.class_names()[20:]
    assert len(base.train_x) == 20 and len(new.test) == 20
    assert osp.isfile(osp.join(d, "split_fewshot", "shot_1-seed_1.pkl"))


def test_missing_dataset_error_says_how_to_render(tmp_path):
    from dataset_fixtures import build

    with pytest.raises(FileNotFoundError, match="python -m miniworld.write --root"):
        build(str(tmp_path), "MiniWorld")


# ------------------------------------------------------------------------------------------------ backbone
def test_checkpoint_is_small_and_matches_recorded_sha256():
    assert osp.getsize(CKPT) <= 10 * 1000 * 1000
    with open(CKPT, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(CKPT + ".sha256") as f:
        assert f.read().split()[0] == digest


def test_named_backbone_loads_through_the_openai_path_with_its_config():
    import open_clip

    import clip
    from clip.clip import miniworld_config

    model = clip.load_clip_to_cpu("miniworld")
    assert model.visual.conv1.weight.dtype == torch.float16
    widths = (model.visual.conv1.out_channels, model.ln_final.weight.shape[0], model.text_projection.shape[1])
    assert widths == (128, 64, 96)  # vision width, text width, embedding: all different
    assert model.visual.image_size == (48, 48) and model.positional_embedding.shape[0] == 77
    ref = open_clip.model.CLIP(**miniworld_config())
    ref.load_state_dict(torch.load(CKPT, weights_only=True), strict=False)
    m = model.float().eval()
    img = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    txt = clip.tokenize(["a photo of a striped red star.", "a dotted blue ring."])
    with torch.no_grad():
        torch.testing.assert_close(m.encode_image(img), ref.eval().encode_image(img), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(m.encode_text(txt), ref.encode_text(txt), rtol=1e-4, atol=1e-4)
    random = clip.load_clip_to_cpu("miniworld", pretrained=False)
    assert random.visual.conv1.weight.shape == model.visual.conv1.weight.shape


# ------------------------------------------------------------------------------------------------ protocol
@pytest.fixture(scope="module")
def b2n(tmp_path_factory):
    """Zero-shot (base, new) and a 2-epoch IVLP (base, new) on a freshly rendered small split, via scripts."""
    base = tmp_path_factory.mktemp("miniworld")
    data, out = base / "data", base / "out"
    write_miniworld(str(data), counts=SMALL, log=lambda s: None)
    env = dict(os.environ, DATA=str(data), OUTPUT=str(out), PY=sys.executable, PYTHONUNBUFFERED="1")
    for k in ("LOADEP", "SUBS"):
        env.pop(k, None)

    def run(script, *args):
        r = subprocess.run(["bash", osp.join(REPO, "scripts", script), *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{script}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    run("zsclip/base2new_test.sh", "miniworld", "1", *FAST)
    run("ivlp/base2new_train.sh", "miniworld", "1", *FAST, *IVLP_SHORT)
    run("ivlp/base2new_test.sh", "miniworld", "1", *FAST, *IVLP_SHORT)
    import extract_log

    _, summary = extract_log.extract(str(out))
    rows = {r["trainer"]: r for _, r in summary[summary["dataset"] == "miniworld"].iterrows()}
    return rows, out


def test_zero_shot_is_well_above_chance_on_base_and_new(b2n):
    rows, out = b2n
    zs = rows["ZeroshotCLIP"]
    assert zs["base"] > ZS_MIN and zs["new"] > ZS_MIN, (zs["base"], zs["new"])
    log = (out / "output" / "base2new" / "test_new" / "miniworld" / "shots_16" / "ZeroshotCLIP" / "vit_b16"
           / "seed1" / "log.txt").read_text()
    assert "SUBSAMPLE NEW CLASSES!" in log and "a photo of a " in log


def test_short_ivlp_run_raises_base_accuracy(b2n):
    rows, _ = b2n
    assert rows["IVLP"]["base"] >= rows["ZeroshotCLIP"]["base"] + IVLP_GAIN, \
        (rows["IVLP"]["base"], rows["ZeroshotCLIP"]["base"])
    assert 0 <= rows["IVLP"]["new"] <= 100


def test_writer_verifies_its_cache_and_force_renders_again(tmp_path):
    counts = {"train": 1, "val": 1, "test": 1}
    d = write_miniworld(str(tmp_path), counts=counts, log=lambda s: None)
    images = sorted(glob.glob(osp.join(d, "images", "*", "*.png")))
    good = open(images[0], "rb").read()
    messages = []
    open(images[0], "wb").write(good[: len(good) // 2])  # truncated
    os.remove(images[1])  # missing
    write_miniworld(str(tmp_path), counts=counts, log=messages.append)
    assert "2 of 120 images missing or truncated" in messages[0] and "cached" not in " ".join(messages)
    assert open(images[0], "rb").read() == good and osp.isfile(images[1])  # deterministic: the same bytes
    messages.clear()
    write_miniworld(str(tmp_path), counts=counts, log=messages.append)
    assert messages == [f"{d}: up to date (cached; every image verified)"]
    os.remove(osp.join(d, split_file("miniworld")))
    messages.clear()
    write_miniworld(str(tmp_path), counts=counts, log=messages.append)
    assert "split file" in messages[0] and osp.isfile(osp.join(d, split_file("miniworld")))
    stamp = osp.getmtime(images[0])
    write_miniworld(str(tmp_path), counts=counts, log=lambda s: None, force=True)
    assert osp.getmtime(images[0]) > stamp
