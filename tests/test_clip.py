"""CLIP loading: OpenAI TorchScript archives and plain state dicts, names, errors, layer access."""
import os
import os.path as osp
import warnings

import open_clip
import pytest
import torch

import clip


def fake_openai_vit():
    """A random-weight CLIP in OpenAI's layout (widths multiple of 64: OpenAI infers heads = width // 64)."""
    torch.manual_seed(123)
    model = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=open_clip.model.CLIPVisionCfg(layers=2, width=64, patch_size=16, image_size=32),
        text_cfg=open_clip.model.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=2),
        quick_gelu=True,
    ).eval()
    return model


@pytest.fixture(scope="module")
def openai_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip_weights")
    model = fake_openai_vit()
    sd = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    sd_with_meta = dict(sd, input_resolution=torch.tensor(32), context_length=torch.tensor(77),
                        vocab_size=torch.tensor(49408))
    torch.save(sd_with_meta, d / "ViT-B-16.pt")  # state-dict format under OpenAI's file name
    traced = torch.jit.trace_module(
        model, {"encode_image": torch.randn(1, 3, 32, 32), "encode_text": torch.zeros(1, 77, dtype=torch.long)})
    traced = traced.half()
    torch.jit.save(traced, str(d / "jit_archive.pt"))
    return d, model


def inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 3, 32, 32, generator=g), clip.tokenize(["a photo of a cat.", "a dog", "x"])


def test_torchscript_and_state_dict_load_identically(openai_files, monkeypatch):
    d, ref = openai_files
    monkeypatch.setenv("CLIP_WEIGHTS_DIR", str(d))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m_sd, preprocess = clip.load("ViT-B/16", device="cpu")  # resolved by OpenAI name in $CLIP_WEIGHTS_DIR
        m_jit, _ = clip.load(str(d / "jit_archive.pt"), device="cpu")
    assert [str(w.message) for w in caught if "jit" in str(w.message)] == []  # no torch.jit deprecation noise
    img, txt = inputs()
    with torch.no_grad():
        for a, b in [(m_sd.encode_image(img), m_jit.encode_image(img)), (m_sd.encode_text(txt), m_jit.encode_text(txt))]:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        # and both equal the source model once its weights are rounded to fp16 like the files
        ref16 = fake_openai_vit()
        ref16.load_state_dict({k: v.half().float() for k, v in ref16.state_dict().items()})
        torch.testing.assert_close(m_sd.encode_image(img), ref16.encode_image(img), rtol=1e-5, atol=1e-5)
    assert m_sd.dtype == torch.float32  # clip.load on CPU gives fp32, as OpenAI's
    assert clip.load_clip_to_cpu("ViT-B/16").dtype == torch.float16  # CoOp's load_clip_to_cpu keeps fp16
    assert preprocess.transforms[1].size == (32, 32) or preprocess.transforms[1].size == 32


def test_openai_attribute_names_reachable():
    m = clip.load_clip_to_cpu("tiny")
    for name in ["token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection",
                 "logit_scale", "visual.conv1", "visual.class_embedding", "visual.ln_pre", "visual.transformer",
                 "visual.ln_post", "visual.proj"]:
        obj = m
        for part in name.split("."):
            obj = getattr(obj, part)
    assert m.dtype == torch.float16
    assert len(m.transformer.resblocks) == 2 and len(m.visual.transformer.resblocks) == 2


def test_tiny_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = clip.load_clip_to_cpu("tiny")
    after = torch.rand(1)
    assert before == after
    b = clip.load_clip_to_cpu("tiny")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    widths = (a.visual.conv1.out_channels, a.ln_final.normalized_shape[0], a.text_projection.shape[1])
    assert len(set(widths)) == 3  # vision width, text width and embedding dim all differ


def test_random_weights_same_architecture_as_named(openai_files, monkeypatch):
    d, _ = openai_files
    monkeypatch.setenv("CLIP_WEIGHTS_DIR", str(d))
    m = clip.load_clip_to_cpu("ViT-B/32", pretrained=False)
    assert m.visual.conv1.kernel_size == (32, 32) and m.visual.conv1.out_channels == 768
    assert m.text_projection.shape == (512, 512)


def test_missing_weights_error_names_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIP_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(clip.WeightsNotFoundError) as e:
        clip.load_clip_to_cpu("ViT-B/16")
    msg = str(e.value)
    assert osp.join(str(tmp_path), "ViT-B-16.pt") in msg
    assert osp.expanduser("~/.cache/clip/ViT-B-16.pt") in msg
    assert "openaipublic" in msg and "INSTALL.md" in msg
    with pytest.raises(clip.WeightsNotFoundError, match="no such file"):
        clip.load_clip_to_cpu(str(tmp_path / "nope.pt"))
    with pytest.raises(clip.WeightsNotFoundError, match="not cached locally"):
        clip.load_clip_to_cpu("ViT-B-16:laion2b_s34b_b88k")


def test_tokenize_matches_openai_semantics():
    tok = clip.tokenize(["a photo of a cat."])
    assert tok.shape == (1, 77) and tok.dtype == torch.long
    sot, eot = 49406, 49407
    ids = tok[0][tok[0] != 0].tolist()
    assert ids[0] == sot and ids[-1] == eot and len(ids) == 2 + 6  # a, photo, of, a, cat, "."
    assert tok[0].argmax().item() == len(ids) - 1  # EOT has the highest id: the pooling position
    with pytest.raises(RuntimeError, match="too long"):
        clip.tokenize(["word " * 100])
    assert clip.tokenize(["word " * 100], truncate=True)[0, -1].item() == eot
