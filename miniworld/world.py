"""The mini-world: vocabulary, classes, rendering styles, a vectorised renderer and captions.

An image shows one object on a background. The object has a **shape** (10), a **colour** (10), a surface
**pattern** (4), a **size** (2), a position and a rotation; the picture has a **style** (how it is rendered).
A downstream class is a ``"<pattern> <colour> <shape>"`` phrase (e.g. ``"striped red star"``); 40 such triples
are drawn once (fixed seed) and split CoOp's way: the first 20 labels are the base classes, the last 20 the new
ones. The triples of the new classes never occur in pretraining (so recognising them is compositional
transfer), their words do.

Styles: six pretraining styles (``PRETRAIN_STYLES``) with their word in the captions ("a blurry photo of a
small striped red star."), and held-out styles never seen in pretraining: ``DOWNSTREAM_STYLE`` (the
``MiniWorld`` dataset) and the harder ``SHIFT_STYLES`` (domain-shift variants).

Everything is drawn from a NumPy ``Generator`` (PCG64, platform-independent) and rendered with elementwise
torch ops at 2x resolution, then 2x2-averaged to ``IMAGE_SIZE`` (anti-aliasing): the same seed gives the
same images.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SIZE = 48
SUPERSAMPLE = 2
_R = IMAGE_SIZE * SUPERSAMPLE

SHAPES = ["circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "heart", "diamond", "ring"]
COLOURS = {
    "red": (0.85, 0.12, 0.12), "orange": (0.96, 0.55, 0.10), "yellow": (0.95, 0.88, 0.15),
    "green": (0.15, 0.68, 0.20), "cyan": (0.15, 0.80, 0.85), "blue": (0.15, 0.28, 0.90),
    "purple": (0.55, 0.20, 0.75), "pink": (0.98, 0.56, 0.76), "brown": (0.52, 0.32, 0.14),
    "white": (0.95, 0.95, 0.95),
}
COLOUR_NAMES = list(COLOURS)
PATTERNS = ["plain", "striped", "dotted", "checkered"]
SIZES = {"small": (0.28, 0.40), "large": (0.48, 0.66)}  # object radius, in half-image units
SIZE_NAMES = list(SIZES)

# style -> caption phrase (before the object description)
STYLE_PHRASES = {
    "photo": "a photo of a",
    "drawing": "a drawing of a",
    "painting": "a painting of a",
    "pixel art": "a pixel art of a",
    "blurry photo": "a blurry photo of a",
    "dark photo": "a dark photo of a",
    # held out of pretraining
    "hazy photo": "a photo of a",
    "cluttered photo": "a photo of a",
    "foggy photo": "a foggy photo of a",
    "noisy photo": "a noisy photo of a",
    "textured photo": "a photo of a",
}
PRETRAIN_STYLES = ["photo", "drawing", "painting", "pixel art", "blurry photo", "dark photo"]
DOWNSTREAM_STYLE = "hazy photo"
SHIFT_STYLES = ["cluttered photo", "foggy photo", "noisy photo", "textured photo"]
STYLES = list(STYLE_PHRASES)

N_CLASSES = 40  # downstream classes: 20 base + 20 new
CLASS_SEED = 7  # seed of the draw of the downstream triples (fixed: part of the world's definition)


# ------------------------------------------------------------------------------------------------------
# Classes
# ------------------------------------------------------------------------------------------------------
def all_triples() -> List[Tuple[int, int, int]]:
    """Every (pattern, colour, shape) index triple, in lexicographic order."""
    return [(p, c, s) for p in range(len(PATTERNS)) for c in range(len(COLOURS)) for s in range(len(SHAPES))]


def class_triples(n: int = N_CLASSES, seed: int = CLASS_SEED) -> List[Tuple[int, int, int]]:
    """The downstream classes in label order (a seeded random draw of ``n`` distinct triples)."""
    triples = all_triples()
    order = np.random.default_rng(seed).permutation(len(triples))[:n]
    return [triples[i] for i in order]


def triple_name(t: Tuple[int, int, int]) -> str:
    p, c, s = t
    return f"{PATTERNS[p]} {COLOUR_NAMES[c]} {SHAPES[s]}"


def class_names(n: int = N_CLASSES) -> List[str]:
    return [triple_name(t) for t in class_triples(n)]


def new_triples(n: int = N_CLASSES) -> List[Tuple[int, int, int]]:
    """Triples of the new classes (labels ``ceil(n/2)..n-1``, CoOp's base/new rule): held out of pretraining."""
    return class_triples(n)[math.ceil(n / 2):]


# ------------------------------------------------------------------------------------------------------
# Shapes: boundary radius as a function of the polar angle (lookup tables)
# ------------------------------------------------------------------------------------------------------
_T = 1024  # angular resolution of the tables


def _ray_polygon(points: np.ndarray) -> np.ndarray:
    """Distance from the origin to a closed polygon along ``_T`` rays (first crossing)."""
    phi = (np.arange(_T) + 0.5) / _T * 2 * np.pi - np.pi
    d = np.stack([np.cos(phi), np.sin(phi)], 1)[:, None, :]  # [T, 1, 2]
    p0 = points[None]  # [1, E, 2]
    e = np.roll(points, -1, axis=0)[None] - p0
    cross = lambda a, b: a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]  # noqa: E731
    den = cross(d, e)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = cross(p0, e) / den
        s = cross(p0, d) / den
    ok = (np.abs(den) > 1e-12) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0)
    return np.where(ok, t, np.inf).min(1)


def _regular(n: int, radius: float = 1.0, inner: float = None) -> np.ndarray:
    """A regular n-gon (or an n-pointed star with ``inner`` radius) pointing up (image y grows down)."""
    k = 2 * n if inner else n
    ang = -np.pi / 2 + np.arange(k) * 2 * np.pi / k
    r = np.full(k, radius)
    if inner:
        r[1::2] = inner
    return np.stack([r * np.cos(ang), r * np.sin(ang)], 1)


def _cross(arm: float = 0.34) -> np.ndarray:
    a = arm
    return np.array([[a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a],
                     [-a, -a], [-a, -1]], dtype=float)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))  # image y down
    pts = np.stack([x, y], 1)
    pts -= pts.mean(0)
    return pts / np.hypot(pts[:, 0], pts[:, 1]).max() * 1.05


def _shape_tables() -> Tuple[torch.Tensor, torch.Tensor]:
    hi, lo = [], []
    for name in SHAPES:
        inner = np.zeros(_T)
        if name in ("circle", "ring"):
            outer = np.ones(_T)
            if name == "ring":
                inner = np.full(_T, 0.56)
        elif name == "triangle":
            outer = _ray_polygon(_regular(3, 1.15))
        elif name == "square":
            outer = _ray_polygon(_regular(4, 1.05))
        elif name == "pentagon":
            outer = _ray_polygon(_regular(5, 1.0))
        elif name == "hexagon":
            outer = _ray_polygon(_regular(6, 1.0))
        elif name == "star":
            outer = _ray_polygon(_regular(5, 1.1, inner=0.46))
        elif name == "cross":
            outer = _ray_polygon(_cross())
        elif name == "heart":
            outer = _ray_polygon(_heart())
        elif name == "diamond":
            outer = _ray_polygon(np.array([[0, -1.08], [0.6, 0], [0, 1.08], [-0.6, 0]]))
        else:
            raise AssertionError(name)
        hi.append(outer)
        lo.append(inner)
    return torch.tensor(np.array(hi), dtype=torch.float32), torch.tensor(np.array(lo), dtype=torch.float32)


_HI, _LO = _shape_tables()


# ------------------------------------------------------------------------------------------------------
# Scenes
# ------------------------------------------------------------------------------------------------------
@dataclass
class Scenes:
    """Parameters of ``n`` images (arrays with a leading ``n`` axis)."""

    pattern: np.ndarray
    colour: np.ndarray
    shape: np.ndarray
    size: np.ndarray
    style: np.ndarray  # index into STYLES
    radius: np.ndarray
    theta: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    rgb: np.ndarray  # [n, 3] jittered object colour
    period: np.ndarray
    pattern_angle: np.ndarray
    phase: np.ndarray  # [n, 2]
    seed: np.ndarray  # per-image seed for the style's noise fields

    def __len__(self):
        return len(self.shape)

    def subset(self, idx):
        return Scenes(**{k: v[idx] for k, v in self.__dict__.items()})


def sample_scenes(rng: np.random.Generator, triples: Sequence[Tuple[int, int, int]],
                  styles: Sequence[str]) -> Scenes:
    """One scene per entry of ``triples`` (pattern, colour, shape), style drawn uniformly from ``styles``."""
    n = len(triples)
    tr = np.asarray(triples, dtype=np.int64).reshape(n, 3)
    size = rng.integers(0, len(SIZES), n)
    lo = np.array([SIZES[s][0] for s in SIZE_NAMES])[size]
    hi = np.array([SIZES[s][1] for s in SIZE_NAMES])[size]
    radius = lo + (hi - lo) * rng.random(n)
    theta = rng.uniform(0, 2 * np.pi, n)
    heart = tr[:, 2] == SHAPES.index("heart")
    theta[heart] = rng.uniform(-0.35, 0.35, heart.sum())
    span = 0.92 - radius
    cx = rng.uniform(-1, 1, n) * span
    cy = rng.uniform(-1, 1, n) * span
    base = np.array([COLOURS[c] for c in COLOUR_NAMES])[tr[:, 1]]
    rgb = np.clip(base * (1 + 0.08 * rng.standard_normal((n, 3))) + 0.03 * rng.standard_normal((n, 1)), 0, 1)
    style_idx = np.array([STYLES.index(s) for s in styles])[rng.integers(0, len(styles), n)]
    return Scenes(pattern=tr[:, 0], colour=tr[:, 1], shape=tr[:, 2], size=size, style=style_idx,
                  radius=radius, theta=theta, cx=cx, cy=cy, rgb=rgb,
                  period=rng.uniform(0.36, 0.52, n), pattern_angle=rng.uniform(0, np.pi, n),
                  phase=rng.random((n, 2)), seed=rng.integers(0, 2**31 - 1, n))


# ------------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------------
def _grid():
    c = (torch.arange(_R, dtype=torch.float32) + 0.5) / _R * 2 - 1
    return c.view(1, 1, _R), c.view(1, _R, 1)  # x [1, 1, R], y [1, R, 1]


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def _geometry(shape, radius, theta, cx, cy):
    """Object mask ``[n, R, R]`` (0/1) and local coordinates u, v (object radius ~ 1)."""
    x, y = _grid()
    dx, dy = x - _t(cx).view(-1, 1, 1), y - _t(cy).view(-1, 1, 1)
    cos, sin = torch.cos(_t(theta)).view(-1, 1, 1), torch.sin(_t(theta)).view(-1, 1, 1)
    r_ = _t(radius).view(-1, 1, 1)
    u = (dx * cos + dy * sin) / r_
    v = (-dx * sin + dy * cos) / r_
    r = torch.sqrt(u * u + v * v)
    idx = ((torch.atan2(v, u) + math.pi) / (2 * math.pi) * _T).long().clamp_(0, _T - 1)
    sid = torch.as_tensor(np.asarray(shape), dtype=torch.long).view(-1, 1, 1)
    mask = ((r <= _HI[sid, idx]) & (r >= _LO[sid, idx])).float()
    return mask, u, v


def _pattern(pattern, period, angle, phase, u, v):
    """Dark-pattern indicator ``[n, R, R]``: stripes, dots or checks in object coordinates."""
    pattern = np.asarray(pattern)
    out = torch.zeros_like(u)
    for p in (1, 2, 3):
        idx = np.nonzero(pattern == p)[0]
        if not len(idx):
            continue
        it = torch.as_tensor(idx)
        uu, vv = u[it], v[it]
        per = _t(period[idx]).view(-1, 1, 1)
        ph0 = _t(phase[idx, 0]).view(-1, 1, 1)
        ph1 = _t(phase[idx, 1]).view(-1, 1, 1)
        if p == 1:  # stripes
            a = _t(angle[idx]).view(-1, 1, 1)
            val = torch.frac((uu * torch.cos(a) + vv * torch.sin(a)) / per + ph0 + 100) < 0.5
        elif p == 2:  # dots
            gu = torch.frac(uu / per + ph0 + 100) - 0.5
            gv = torch.frac(vv / per + ph1 + 100) - 0.5
            val = gu * gu + gv * gv < 0.28 ** 2
        else:  # checks
            val = (torch.floor(uu / per + ph0) + torch.floor(vv / per + ph1)) % 2 == 0
        out[it] = val.float()
    return out


def _gauss_kernel(sigma: float) -> torch.Tensor:
    k = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-k, k + 1, dtype=torch.float32)
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[n, C, H, W]`` (reflect padding)."""
    g = _gauss_kernel(sigma)
    c = img.shape[1]
    k = len(g) // 2
    x = F.pad(img, (k, k, 0, 0), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, (0, 0, k, k), mode="replicate")
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _lowfreq(rng, n, channels, grid, amp):
    """Smooth noise ``[n, C, R, R]``: a ``grid x grid`` normal field, bicubically upsampled, times ``amp``."""
    z = torch.as_tensor(rng.standard_normal((n, channels, grid, grid)), dtype=torch.float32)
    return F.interpolate(z, size=(_R, _R), mode="bicubic", align_corners=False) * amp


def _muted(rng, n, lo=0.3, hi=0.75, tint=0.08):
    g = rng.uniform(lo, hi, (n, 1))
    return np.clip(g + tint * rng.standard_normal((n, 3)), 0, 1)


def _gradient_bg(rng, n):
    c1, c2 = _t(_muted(rng, n)), _t(_muted(rng, n))
    a = _t(rng.uniform(0, 2 * np.pi, n)).view(-1, 1, 1)
    x, y = _grid()
    w = ((x * torch.cos(a) + y * torch.sin(a)) * 0.5 + 0.5).unsqueeze(1)  # [n, 1, R, R]
    return c1.view(n, 3, 1, 1) * (1 - w) + c2.view(n, 3, 1, 1) * w


def _photo(sc: Scenes, rng, mask, u, v, obj):
    n = len(sc)
    bg = _gradient_bg(rng, n)
    off = rng.uniform(0.05, 0.10, (n, 2))
    shadow, _, _ = _geometry(sc.shape, sc.radius, sc.theta, sc.cx + off[:, 0], sc.cy + off[:, 1])
    shadow = blur(shadow.unsqueeze(1), 2.5)
    bg = bg * (1 - 0.45 * shadow)
    la = _t(rng.uniform(0, 2 * np.pi, n)).view(-1, 1, 1)
    shade = (1 + 0.22 * (u * torch.cos(la) + v * torch.sin(la)) / 1.0).clamp(0.7, 1.3).unsqueeze(1)
    m = mask.unsqueeze(1)
    return bg * (1 - m) + (obj * shade).clamp(0, 1) * m


def _distractors(sc: Scenes, rng, img, k=3):
    """Paint ``k`` small plain blobs (random shape and colour) away from the object, behind it."""
    n = len(sc)
    out = img
    for _ in range(k):
        rad = rng.uniform(0.09, 0.15, n)
        ang = rng.uniform(0, 2 * np.pi, n)
        dist = sc.radius + rad + rng.uniform(0.05, 0.6, n)
        cx = np.clip(sc.cx + dist * np.cos(ang), -0.95, 0.95)
        cy = np.clip(sc.cy + dist * np.sin(ang), -0.95, 0.95)
        m, _, _ = _geometry(rng.integers(0, len(SHAPES), n), rad, rng.uniform(0, 2 * np.pi, n), cx, cy)
        col = _t(np.array(list(COLOURS.values()))[rng.integers(0, len(COLOURS), n)]).view(n, 3, 1, 1)
        m = m.unsqueeze(1)
        out = out * (1 - m) + col * m
    return out


def _render_style(style: str, sc: Scenes, rng: np.random.Generator) -> torch.Tensor:
    """``[n, 3, R, R]`` images in [0, 1] (pixel art: already blocky at R)."""
    n = len(sc)
    mask, u, v = _geometry(sc.shape, sc.radius, sc.theta, sc.cx, sc.cy)
    pat = _pattern(sc.pattern, sc.period, sc.pattern_angle, sc.phase, u, v).unsqueeze(1)
    rgb = _t(sc.rgb).view(n, 3, 1, 1)
    obj = rgb * (1 - 0.62 * pat)
    m = mask.unsqueeze(1)
    if style in ("photo", "blurry photo", "dark photo", "hazy photo", "foggy photo", "noisy photo"):
        img = _photo(sc, rng, mask, u, v, obj)
        if style == "blurry photo":
            img = blur(img, 2.6)
        elif style == "dark photo":
            img = img * _t(rng.uniform(0.28, 0.45, n)).view(n, 1, 1, 1)
        elif style in ("hazy photo", "foggy photo"):
            f = _t(rng.uniform(*((0.3, 0.4) if style == "hazy photo" else (0.45, 0.6)), n)).view(n, 1, 1, 1)
            img = img * (1 - f) + f * _t(_muted(rng, n, 0.8, 0.95, 0.03)).view(n, 3, 1, 1)
        elif style == "noisy photo":
            img = img + 0.16 * torch.as_tensor(rng.standard_normal((n, 3, _R // 2, _R // 2)),
                                               dtype=torch.float32).repeat_interleave(2, 2).repeat_interleave(2, 3)
    elif style == "cluttered photo":
        bg = _gradient_bg(rng, n) + _lowfreq(rng, n, 3, 6, 0.06)
        bg = _distractors(sc, rng, bg)
        la = _t(rng.uniform(0, 2 * np.pi, n)).view(-1, 1, 1)
        shade = (1 + 0.22 * (u * torch.cos(la) + v * torch.sin(la))).clamp(0.7, 1.3).unsqueeze(1)
        img = bg * (1 - m) + (obj * shade).clamp(0, 1) * m
        img = blur(img, 0.9)
    elif style == "textured photo":
        x, y = _grid()
        per = _t(rng.uniform(0.08, 0.2, n)).view(-1, 1, 1)
        a = _t(rng.uniform(0, np.pi, n)).view(-1, 1, 1)
        tex = (torch.frac((x * torch.cos(a) + y * torch.sin(a)) / per + 100) < 0.5).float().unsqueeze(1)
        c1, c2 = _t(_muted(rng, n, 0.2, 0.8, 0.15)), _t(_muted(rng, n, 0.2, 0.8, 0.15))
        bg = c1.view(n, 3, 1, 1) * tex + c2.view(n, 3, 1, 1) * (1 - tex)
        img = bg * (1 - m) + obj * m
    elif style == "drawing":
        paper = _t(np.clip(rng.uniform(0.9, 0.98, (n, 1)) + 0.02 * rng.standard_normal((n, 3)), 0, 1))
        img = paper.view(n, 3, 1, 1) * (1 - m) + obj * m
        outline = (F.max_pool2d(m, 5, 1, 2) - m).clamp(0, 1)  # a 2-pixel (at 2x) line around the object
        img = img * (1 - outline) + 0.06 * outline
    elif style == "painting":
        bg = _t(_muted(rng, n, 0.3, 0.8, 0.12)).view(n, 3, 1, 1) + _lowfreq(rng, n, 3, 8, 0.08)
        o = obj * (1 + _lowfreq(rng, n, 1, 10, 0.18))
        img = blur(bg * (1 - m) + o * m, 1.4)
    elif style == "pixel art":
        bg = _t(_muted(rng, n, 0.3, 0.8, 0.1)).view(n, 3, 1, 1)
        img = bg * (1 - m) + obj * m
        small = F.adaptive_avg_pool2d(img, (16, 16))
        img = F.interpolate(small, size=(_R, _R), mode="nearest")
    else:
        raise ValueError(f"unknown style '{style}' (known: {STYLES})")
    return img


def render(sc: Scenes, rng: np.random.Generator) -> np.ndarray:
    """``[n, IMAGE_SIZE, IMAGE_SIZE, 3]`` uint8 images of ``sc`` (noise fields drawn from ``rng``)."""
    n = len(sc)
    out = torch.zeros(n, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        for s in np.unique(sc.style):
            idx = np.nonzero(sc.style == s)[0]
            img = _render_style(STYLES[s], sc.subset(idx), rng)
            img = F.avg_pool2d(img, SUPERSAMPLE)
            img = img + 0.012 * torch.as_tensor(rng.standard_normal(img.shape), dtype=torch.float32)
            out[torch.as_tensor(idx)] = img.clamp(0, 1)
    return (out * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------------------------------
# Captions (pretraining)
# ------------------------------------------------------------------------------------------------------
def caption(rng: np.random.Generator, sc: Scenes, i: int) -> str:
    """A caption of scene ``i``: style phrase (or plain "a"), optional size, pattern (mostly), colour, shape."""
    style = STYLES[sc.style[i]]
    words = [STYLE_PHRASES[style] if rng.random() > 0.15 else "a"]
    if rng.random() < 0.5:
        words.append(SIZE_NAMES[sc.size[i]])
    if rng.random() > 0.15:
        words.append(PATTERNS[sc.pattern[i]])
    words += [COLOUR_NAMES[sc.colour[i]], SHAPES[sc.shape[i]]]
    return " ".join(words) + "."


def pretrain_triples(rng: np.random.Generator, n: int, exclude: Sequence[Tuple[int, int, int]]) -> List[tuple]:
    """``n`` triples drawn uniformly from every triple except ``exclude`` (the new classes)."""
    banned = set(map(tuple, exclude))
    allowed = [t for t in all_triples() if t not in banned]
    return [allowed[i] for i in rng.integers(0, len(allowed), n)]


def pretrain_batch(seed: Sequence[int], n: int, styles: Sequence[str] = PRETRAIN_STYLES,
                   exclude=None) -> Tuple[np.ndarray, List[str]]:
    """``n`` pretraining (image, caption) pairs from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(list(seed))
    exclude = new_triples() if exclude is None else exclude
    sc = sample_scenes(rng, pretrain_triples(rng, n, exclude), styles)
    images = render(sc, rng)
    return images, [caption(rng, sc, i) for i in range(n)]


def class_images(seed: Sequence[int], labels: Sequence[int], style: str,
                 triples: Sequence[Tuple[int, int, int]] = None) -> np.ndarray:
    """Images of the given class labels (downstream classes by default) in ``style``."""
    triples = class_triples() if triples is None else triples
    rng = np.random.default_rng(list(seed))
    sc = sample_scenes(rng, [triples[y] for y in labels], [style])
    return render(sc, rng)


def style_template(style: str) -> str:
    """The caption form of ``style`` as a prompt template (``"a photo of a {}."``)."""
    return STYLE_PHRASES[style] + " {}."


STYLE_SUMMARY: Dict[str, str] = {
    "photo": "gradient background, soft shadow, shading",
    "drawing": "paper background, flat colours, black outline",
    "painting": "smooth colour noise on object and background, soft edges",
    "pixel art": "flat colours at 16x16, upsampled blocky",
    "blurry photo": "photo, Gaussian blur",
    "dark photo": "photo at 28-45% brightness",
    "hazy photo": "photo blended 30-40% with a pale haze colour",
    "cluttered photo": "textured gradient background, 3 small plain distractor shapes, shading, slight blur",
    "foggy photo": "photo blended 45-60% with a pale fog colour",
    "noisy photo": "photo with strong per-pixel noise (std 0.16)",
    "textured photo": "high-contrast striped background, unshaded object",
}
