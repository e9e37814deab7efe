#!/usr/bin/python3
"""Reference tensors for package preprocess, computed by torchvision on PIL.

Run with Debian's Python (python3-torch, python3-torchvision, python3-pil,
python3-numpy):

  /usr/bin/python3 make_reference.py
      rewrite the committed fixtures (fixtures/), cases.json and the
      reference tensors (ref/<case>.f32.gz) in this directory
  /usr/bin/python3 make_reference.py fixtures DIR
      write the fixture images into DIR
  /usr/bin/python3 make_reference.py large DIR
      write larger JPEGs (photo-like, 1024 to 3000 pixels wide) into DIR
  /usr/bin/python3 make_reference.py tensors CASES.json OUTDIR [--gzip]
      compute every case of CASES.json into OUTDIR/<name>.f32[.gz]

A case is {"name", "file" (relative to the JSON's folder), "channels" (1 or
3), "resize" (0: none), "crop" (0: none), "mean", "std" (null: no
Normalize)}. A tensor file is the raw little-endian float32 CHW tensor.

The transform is what a torchvision ImageFolder pipeline computes:

  img = Image.open(f).convert("RGB" or "L")
  Compose([Resize(resize), CenterCrop(crop), ToTensor(), Normalize(mean, std)])
"""

import gzip
import io
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def natural(h, w, seed, channels=3):
    """A photo-like uint8 image: 1/f noise, gradients, sharp shapes, stripes."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    base = []
    for _ in range(3):
        spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        spec[0, 0] = 0
        x = np.fft.irfft2(spec, s=(h, w))
        base.append((x - x.mean()) / (x.std() + 1e-9))
    base = np.stack(base, -1)
    mix = np.array([[1.0, 0.6, 0.3], [0.2, 1.0, 0.5], [0.4, 0.3, 1.0]])
    x = 120 + 22 * base @ mix.T
    yy, xx = np.mgrid[0:h, 0:w]
    x += (60 * xx / w)[..., None] * np.array([1.0, -0.5, 0.2])
    x += (50 * yy / h)[..., None] * np.array([-0.3, 0.8, 0.6])
    # a sharp rectangle, a disc, fine stripes: edges and aliasing
    x[h // 5 : h // 2, w // 6 : w // 3] = [230, 40, 30]
    disc = (yy - 2 * h // 3) ** 2 + (xx - 2 * w // 3) ** 2 < (min(h, w) // 6) ** 2
    x[disc] = [20, 60, 220]
    stripes = ((xx // 2) % 2 == 0) & (yy > 4 * h // 5)
    x[stripes] += 70
    img = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if channels == 1:
        return Image.fromarray(img, "RGB").convert("L")
    return Image.fromarray(img, "RGB")


def write_fixtures(d):
    os.makedirs(d, exist_ok=True)
    natural(251, 333, 1).save(os.path.join(d, "rgb420_333x251.jpg"), quality=90, subsampling=2)
    natural(208, 160, 2).save(os.path.join(d, "rgb444_160x208.jpg"), quality=85, subsampling=0)
    natural(161, 241, 3).save(os.path.join(d, "rgb422_241x161.jpg"), quality=85, subsampling=1)
    natural(192, 256, 4).save(os.path.join(d, "progressive_256x192.jpg"), quality=88, progressive=True)
    natural(145, 193, 5, channels=1).save(os.path.join(d, "grey_193x145.jpg"), quality=90)
    natural(97, 129, 6).convert("CMYK").save(os.path.join(d, "cmyk_129x97.jpg"), quality=85)
    natural(30, 40, 7).save(os.path.join(d, "tiny_40x30.jpg"), quality=95)
    rgba = natural(64, 96, 8)
    alpha = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))
    alpha[:, :20] = 0  # fully transparent pixels keep their colour
    rgba.putalpha(Image.fromarray(alpha, "L"))
    rgba.save(os.path.join(d, "rgba_96x64.png"))
    pal = natural(146, 100, 9).convert("P", palette=Image.ADAPTIVE, colors=64)
    pal.save(os.path.join(d, "palette_100x146.png"), transparency=0)
    natural(91, 67, 10, channels=1).save(os.path.join(d, "grey_67x91.png"))
    la = natural(70, 90, 11, channels=1)
    la.putalpha(128)
    la.save(os.path.join(d, "greyalpha_90x70.png"))
    # cut mid-scan and closed with EOI: libjpeg warns of corrupt data and
    # fills the rest; PIL accepts it (without the EOI it is "truncated")
    buf = io.BytesIO()
    natural(75, 100, 13).save(buf, format="JPEG", quality=90)
    b = buf.getvalue()
    with open(os.path.join(d, "corrupt_100x75.jpg"), "wb") as f:
        f.write(b[: len(b) * 2 // 3] + b"\xff\xd9")
    g16 = (np.asarray(natural(48, 64, 12, channels=1), dtype=np.uint16) * 2).astype(np.uint16)
    Image.fromarray(g16).save(os.path.join(d, "grey16_64x48.png"))


def write_large(d):
    os.makedirs(d, exist_ok=True)
    for i, (w, h, q, ss) in enumerate([(1024, 768, 90, 2), (1280, 960, 90, 0), (2048, 1536, 85, 2), (3000, 2000, 90, 2), (768, 1024, 92, 1)]):
        sub = ["444", "422", "420"][ss]
        natural(h, w, 100 + i).save(os.path.join(d, f"large{i}_{w}x{h}_q{q}_{sub}.jpg"), quality=q, subsampling=ss)


def reference(path, channels, resize, crop, mean, std):
    import torch
    import torchvision.transforms as T

    img = Image.open(path)
    img = img.convert("RGB" if channels == 3 else "L")
    t = []
    if resize:
        t.append(T.Resize(resize))  # BILINEAR; on PIL always antialiased
    if crop:
        t.append(T.CenterCrop(crop))
    t.append(T.ToTensor())
    if mean is not None:
        t.append(T.Normalize(mean, std))
    x = T.Compose(t)(img)
    assert x.dtype == torch.float32 and x.shape[0] == channels
    return x.contiguous().numpy().astype("<f4", copy=False)


def write_tensors(cases_path, outdir, gz):
    import torch

    torch.set_num_threads(1)
    base = os.path.dirname(os.path.abspath(cases_path))
    os.makedirs(outdir, exist_ok=True)
    with open(cases_path) as f:
        cases = json.load(f)
    for c in cases:
        x = reference(os.path.join(base, c["file"]), c["channels"], c["resize"], c["crop"], c.get("mean"), c.get("std"))
        data = x.tobytes()
        name = os.path.join(outdir, c["name"] + ".f32")
        if gz:
            with open(name + ".gz", "wb") as f:
                # mtime 0: the same bytes every run
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
                    g.write(data)
        else:
            with open(name, "wb") as f:
                f.write(data)


def committed_cases():
    fixtures = sorted(os.listdir(os.path.join(HERE, "fixtures")))
    cases = []
    for fx in fixtures:
        stem = os.path.splitext(fx)[0]
        f = "fixtures/" + fx
        # ImageNet-like, scaled down (downscale factors 3 to 10, 1.3 to 2 for tiny)
        cases.append(dict(name=stem + "-rgb-r28c24", file=f, channels=3, resize=28, crop=24, mean=IMAGENET[0], std=IMAGENET[1]))
        # one channel (PIL "L"), a crop that is not square-centred on odd sizes
        cases.append(dict(name=stem + "-l-r37c32", file=f, channels=1, resize=37, crop=32, mean=[0.5], std=[0.25]))
    more = [
        # ImageNet's ratio of sizes (1.3 to 1.5 downscale), a 64 crop of it
        dict(name="rgb420-rgb-r200c40", file="fixtures/rgb420_333x251.jpg", channels=3, resize=200, crop=40),
        dict(name="cmyk-rgb-r80c40", file="fixtures/cmyk_129x97.jpg", channels=3, resize=80, crop=40),
        dict(name="grey-rgb-r120c32", file="fixtures/grey_193x145.jpg", channels=3, resize=120, crop=32, mean=IMAGENET[0], std=IMAGENET[1]),
        dict(name="progressive-l-r150c64", file="fixtures/progressive_256x192.jpg", channels=1, resize=150, crop=64),
        # resize only: a non-square output; odd sizes
        dict(name="rgb422-rgb-r29", file="fixtures/rgb422_241x161.jpg", channels=3, resize=29, crop=0),
        dict(name="rgb444-rgb-r31", file="fixtures/rgb444_160x208.jpg", channels=3, resize=31, crop=0),
        # upscaling
        dict(name="tiny-rgb-r44c36", file="fixtures/tiny_40x30.jpg", channels=3, resize=44, crop=36, mean=IMAGENET[0], std=IMAGENET[1]),
        dict(name="tiny-rgb-r31", file="fixtures/tiny_40x30.jpg", channels=3, resize=31, crop=0),
        # no resize: the crop alone, padded with zeros where the image is smaller
        dict(name="tiny-rgb-c36", file="fixtures/tiny_40x30.jpg", channels=3, resize=0, crop=36, mean=IMAGENET[0], std=IMAGENET[1]),
        dict(name="greyalpha-l-c74", file="fixtures/greyalpha_90x70.png", channels=1, resize=0, crop=74),
        dict(name="tiny-rgb-full", file="fixtures/tiny_40x30.jpg", channels=3, resize=0, crop=0),
        dict(name="grey16-l-full", file="fixtures/grey16_64x48.png", channels=1, resize=0, crop=0),
        dict(name="rgba-rgb-r30", file="fixtures/rgba_96x64.png", channels=3, resize=30, crop=0),
        # the size already right: Resize is the identity
        dict(name="tiny-rgb-r30c24", file="fixtures/tiny_40x30.jpg", channels=3, resize=30, crop=24),
    ]
    return cases + more


def main():
    args = sys.argv[1:]
    if not args:
        write_fixtures(os.path.join(HERE, "fixtures"))
        cases = committed_cases()
        with open(os.path.join(HERE, "cases.json"), "w") as f:
            json.dump(cases, f, indent=1)
            f.write("\n")
        write_tensors(os.path.join(HERE, "cases.json"), os.path.join(HERE, "ref"), gz=True)
    elif args[0] == "fixtures":
        write_fixtures(args[1])
    elif args[0] == "large":
        write_large(args[1])
    elif args[0] == "tensors":
        write_tensors(args[1], args[2], gz="--gzip" in args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
