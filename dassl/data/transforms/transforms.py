"""``build_transform``: Dassl's train/test image pipelines from ``INPUT.*`` (torchvision underneath)."""
import torch
import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

AVAI_CHOICES = [
    "random_flip", "random_resized_crop", "normalize", "instance_norm", "random_crop",
    "random_translation", "center_crop", "cutout", "imagenet_policy", "cifar10_policy",
    "svhn_policy", "randaugment", "randaugment_fixmatch", "randaugment2", "gaussian_noise",
    "colorjitter", "randomgrayscale", "gaussian_blur",
]

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """Enlarge by 1/8 then random-crop back to ``(height, width)`` with probability ``p`` (else resize)."""

    def __init__(self, height, width, p=0.5, interpolation=InterpolationMode.BILINEAR):
        self.height, self.width, self.p, self.interpolation = height, width, p, interpolation

    def __call__(self, img):
        if torch.rand(1).item() > self.p:
            return T.functional.resize(img, [self.height, self.width], self.interpolation)
        new_w, new_h = int(round(self.width * 1.125)), int(round(self.height * 1.125))
        resized = T.functional.resize(img, [new_h, new_w], self.interpolation)
        x1 = int(torch.randint(0, new_w - self.width + 1, (1,)))
        y1 = int(torch.randint(0, new_h - self.height + 1, (1,)))
        return T.functional.crop(resized, y1, x1, self.height, self.width)


class InstanceNormalization:
    """Normalise each channel of a ``[C, H, W]`` tensor by its own mean and std."""

    def __init__(self, eps=1e-8):
        self.eps = eps

    def __call__(self, img):
        c = img.shape[0]
        flat = img.reshape(c, -1)
        mean = flat.mean(1).view(c, 1, 1)
        std = flat.std(1).view(c, 1, 1)
        return (img - mean) / (std + self.eps)


class Cutout:
    """Zero ``n_holes`` random ``length x length`` squares of a ``[C, H, W]`` tensor."""

    def __init__(self, n_holes=1, length=16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img):
        h, w = img.shape[1:3]
        mask = torch.ones(h, w)
        for _ in range(self.n_holes):
            y, x = int(torch.randint(h, (1,))), int(torch.randint(w, (1,)))
            y1, y2 = max(0, y - self.length // 2), min(h, y + self.length // 2)
            x1, x2 = max(0, x - self.length // 2), min(w, x + self.length // 2)
            mask[y1:y2, x1:x2] = 0.0
        return img * mask


class GaussianNoise:
    """Add N(mean, std) noise to a tensor with probability ``p``."""

    def __init__(self, mean=0, std=0.15, p=0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img):
        if torch.rand(1).item() > self.p:
            return img
        return img + torch.randn_like(img) * self.std + self.mean


def build_transform(cfg, is_train=True, choices=None):
    """The training (``is_train``) or test pipeline of ``cfg.INPUT`` (prints each step, as Dassl)."""
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    if choices is None:
        choices = cfg.INPUT.TRANSFORMS
    for choice in choices:
        if choice not in AVAI_CHOICES:
            raise ValueError(f"INPUT.TRANSFORMS: unknown transform '{choice}'; choose from {AVAI_CHOICES}")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ValueError(f"INPUT.INTERPOLATION must be one of {sorted(INTERPOLATION_MODES)}, "
                         f"got '{cfg.INPUT.INTERPOLATION}'")
    target_size = f"{cfg.INPUT.SIZE[0]}x{cfg.INPUT.SIZE[1]}"
    normalize = T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_transform_train(cfg, choices, target_size, normalize)
    return _build_transform_test(cfg, choices, target_size, normalize)


def _build_transform_train(cfg, choices, target_size, normalize):
    print("Building transform_train")
    tfm = []
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = list(cfg.INPUT.SIZE)
    conditions = ["random_crop" not in choices, "random_resized_crop" not in choices]
    if all(conditions):
        print(f"+ resize to {target_size}")
        tfm += [T.Resize(size, interpolation=interp)]
    if "random_translation" in choices:
        print("+ random translation")
        tfm += [Random2DTranslation(size[0], size[1], interpolation=interp)]
    if "random_crop" in choices:
        crop_padding = cfg.INPUT.CROP_PADDING
        print(f"+ random crop (padding = {crop_padding})")
        tfm += [T.RandomCrop(size, padding=crop_padding)]
    if "random_resized_crop" in choices:
        s_ = tuple(cfg.INPUT.RRCROP_SCALE)
        print(f"+ random resized crop (size={tuple(cfg.INPUT.SIZE)}, scale={s_})")
        tfm += [T.RandomResizedCrop(size, scale=s_, interpolation=interp)]
    if "random_flip" in choices:
        print("+ random flip")
        tfm += [T.RandomHorizontalFlip()]
    if "imagenet_policy" in choices:
        print("+ imagenet policy")
        tfm += [T.AutoAugment(T.AutoAugmentPolicy.IMAGENET)]
    if "cifar10_policy" in choices:
        print("+ cifar10 policy")
        tfm += [T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)]
    if "svhn_policy" in choices:
        print("+ svhn policy")
        tfm += [T.AutoAugment(T.AutoAugmentPolicy.SVHN)]
    for name in ("randaugment", "randaugment_fixmatch", "randaugment2"):
        if name in choices:
            n_, m_ = cfg.INPUT.RANDAUGMENT_N, cfg.INPUT.RANDAUGMENT_M
            print(f"+ {name} (n={n_}, m={m_}; torchvision RandAugment)")
            tfm += [T.RandAugment(num_ops=n_, magnitude=m_)]
    if "colorjitter" in choices:
        b_, c_, s_, h_ = (cfg.INPUT.COLORJITTER_B, cfg.INPUT.COLORJITTER_C,
                          cfg.INPUT.COLORJITTER_S, cfg.INPUT.COLORJITTER_H)
        print(f"+ color jitter (brightness={b_}, contrast={c_}, saturation={s_}, hue={h_})")
        tfm += [T.ColorJitter(brightness=b_, contrast=c_, saturation=s_, hue=h_)]
    if "randomgrayscale" in choices:
        print(f"+ random gray scale (p={cfg.INPUT.RGS_P})")
        tfm += [T.RandomGrayscale(p=cfg.INPUT.RGS_P)]
    if "gaussian_blur" in choices:
        gb_k, gb_p = cfg.INPUT.GB_K, cfg.INPUT.GB_P
        print(f"+ gaussian blur (kernel={gb_k}, p={gb_p})")
        tfm += [T.RandomApply([T.GaussianBlur(gb_k)], p=gb_p)]
    print("+ to torch tensor of range [0, 1]")
    tfm += [T.ToTensor()]
    if "cutout" in choices:
        print(f"+ cutout (n_holes={cfg.INPUT.CUTOUT_N}, length={cfg.INPUT.CUTOUT_LEN})")
        tfm += [Cutout(cfg.INPUT.CUTOUT_N, cfg.INPUT.CUTOUT_LEN)]
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm += [normalize]
    if "gaussian_noise" in choices:
        print(f"+ gaussian noise (mean={cfg.INPUT.GN_MEAN}, std={cfg.INPUT.GN_STD})")
        tfm += [GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD)]
    if "instance_norm" in choices:
        print("+ instance normalization")
        tfm += [InstanceNormalization()]
    return T.Compose(tfm)


def _build_transform_test(cfg, choices, target_size, normalize):
    print("Building transform_test")
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    print(f"+ resize the smaller edge to {max(cfg.INPUT.SIZE)}")
    tfm = [T.Resize(max(cfg.INPUT.SIZE), interpolation=interp)]
    print(f"+ {target_size} center crop")
    tfm += [T.CenterCrop(list(cfg.INPUT.SIZE))]
    print("+ to torch tensor of range [0, 1]")
    tfm += [T.ToTensor()]
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm += [normalize]
    if "instance_norm" in choices:
        print("+ instance normalization")
        tfm += [InstanceNormalization()]
    return T.Compose(tfm)
