#!/usr/bin/env python3
"""Thumbnail fidelity: thumbd vs vipsthumbnail vs Pillow, scored with DSSIM per file and class.

    python3 benches/quality.py [FOLDER ...] [--thumbd target/release/thumbd]
                               [--space srgb|linear] [--write benches/README.md]

Inputs: synthetic images this script makes itself (so it runs anywhere, without a corpus)
plus every PNG/JPEG up to 5 MB in the FOLDERs given. Every tool makes a thumbnail inside a
330×330 box; each is scored against a reference of the same size made from a full decode
(Pillow, EXIF transposed, ICC converted to sRGB): a plain Lanczos3 resize with no
pre-shrink (`--space srgb`, the default), or the same Lanczos3 in linear light with
premultiplied alpha (`--space linear`, which also runs thumbd with
THUMBD_RESIZE_SPACE=linear and vipsthumbnail with --linear).

DSSIM = (1 - SSIM) / 2, SSIM per channel over a 7x7 window, mean over RGB; alpha is
composited over mid-gray before scoring. Lower is better; 0 is identical to the reference.

Each file has a class: photo, illustration, transparency, gradient or text-line-art. The
synthetic files carry it in their names (`photo--…`); other files are classed from their
pixels (see `classify`). The report has one row per file, a mean per class and tool, and
lists the files where thumbd scores worse than vipsthumbnail. With --write it goes into the
file between <!-- quality:begin --> and <!-- quality:end --> (or, with --space linear,
<!-- quality-linear:begin --> and <!-- quality-linear:end -->).

Needs: vipsthumbnail (Debian libvips-tools), Pillow and numpy (pip).
"""
import argparse, io, os, platform, shutil, statistics, subprocess, sys, tempfile

import numpy as np
from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps

BOX = 330
MAX_BYTES = 5 * 1024 * 1024
CLASSES = ("photo", "illustration", "transparency", "gradient", "text-line-art")


# --- reference and score ---------------------------------------------------------------

def full_decode(path):
    """The whole image as Pillow decodes it: upright, sRGB, RGB or RGBA, 8-bit."""
    im = Image.open(path)
    icc = im.info.get("icc_profile")
    im = ImageOps.exif_transpose(im)
    if im.mode == "I;16" or im.mode.startswith("I"):
        im = im.point(lambda v: v / 256).convert("L")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            mode = "RGBA" if "A" in im.mode else "RGB"
            im = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode=mode)
        except Exception:
            pass
    if im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
    return im


def srgb_to_linear(v):
    v = v / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v):
    v = np.clip(v, 0.0, 1.0)
    return 255.0 * np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def resize_float(planes, size):
    return [np.asarray(Image.fromarray(p.astype(np.float32), "F").resize(size, Image.LANCZOS, reducing_gap=None),
                       dtype=np.float64) for p in planes]


def reference(path, size, space="srgb", decoded=None):
    """Lanczos3 from the full decode to `size`, in gamma space or in linear light."""
    im = decoded if decoded is not None else full_decode(path)
    if space == "srgb":
        return im.resize(size, Image.LANCZOS, reducing_gap=None)
    a = np.asarray(im, dtype=np.float64)
    rgb = srgb_to_linear(a[..., :3])
    alpha = a[..., 3] / 255.0 if im.mode == "RGBA" else np.ones(a.shape[:2])
    planes = resize_float([rgb[..., c] * alpha for c in range(3)] + [alpha], size)
    out_a = np.clip(planes[3], 0.0, 1.0)
    safe = np.where(out_a > 1e-6, out_a, 1.0)
    rgb = np.stack([linear_to_srgb(p / safe) for p in planes[:3]], -1)
    if im.mode == "RGBA":
        arr = np.dstack([rgb, out_a * 255.0])
        return Image.fromarray(np.rint(arr).clip(0, 255).astype(np.uint8), "RGBA")
    return Image.fromarray(np.rint(rgb).clip(0, 255).astype(np.uint8), "RGB")


def to_rgb_float(im):
    """RGB float array; alpha composited over mid-gray."""
    im = im.convert("RGBA")
    bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
    return np.asarray(Image.alpha_composite(bg, im).convert("RGB"), dtype=np.float64)


def box_mean(a, r=3):
    """Mean over a (2r+1)^2 window, valid region only."""
    c = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), 0), 1)
    n = 2 * r + 1
    return (c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]) / (n * n)


def dssim(a, b):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for ch in range(3):
        x, y = a[..., ch], b[..., ch]
        mx, my = box_mean(x), box_mean(y)
        vx = box_mean(x * x) - mx * mx
        vy = box_mean(y * y) - my * my
        cxy = box_mean(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        vals.append(s.mean())
    return (1 - float(np.mean(vals))) / 2


def score(out_path, src_path, space="srgb", decoded=None, refs=None):
    """DSSIM of a thumbnail against the reference; `refs` caches references by size."""
    out = Image.open(out_path)
    key = out.size
    if refs is None or key not in refs:
        ref = reference(src_path, out.size, space, decoded)
        if refs is not None:
            refs[key] = ref
    else:
        ref = refs[key]
    return dssim(to_rgb_float(out), to_rgb_float(ref))


# --- classes -----------------------------------------------------------------------------

def classify(path, decoded):
    """The class of a file: from its name (`class--rest`), else from its pixels.

    Real transparency (some alpha < 255) is `transparency`; a picture whose most common
    colour covers a third of it, or with few colours, is `text-line-art`. The rest is
    judged at twice the thumbnail size: neighbouring pixels differing by less than one
    level on average is `gradient`; JPEGs are `photo`; PNGs are `illustration` unless they
    have photo-like texture (mean neighbour difference above 5 levels)."""
    name = os.path.basename(path)
    if "--" in name and name.split("--", 1)[0] in CLASSES:
        return name.split("--", 1)[0]
    im = decoded
    if im.mode == "RGBA" and im.getextrema()[3][0] < 255:
        return "transparency"
    small = im.convert("RGB")
    small.thumbnail((512, 512), Image.NEAREST)
    a = np.asarray(small, dtype=np.int32)
    flat = a.reshape(-1, 3)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    _, counts = np.unique(packed, return_counts=True)
    if counts.max() > len(packed) / 3 or len(counts) < 64:
        return "text-line-art"
    grey = im.convert("L")
    grey.thumbnail((2 * BOX, 2 * BOX), Image.LANCZOS)
    g = np.asarray(grey, dtype=np.float64)
    texture = float(np.mean(np.abs(np.diff(g, axis=1))))
    if texture < 1.0:
        return "gradient"
    if path.lower().endswith((".jpg", ".jpeg")) or texture > 5:
        return "photo"
    return "illustration"


# --- synthetic inputs --------------------------------------------------------------------

def smooth_noise(rng, h, w, scale):
    """Band-limited noise: random values on a coarse grid, upscaled bicubically."""
    gh, gw = max(2, h // scale), max(2, w // scale)
    g = rng.random((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(g, "F").resize((w, h), Image.BICUBIC), dtype=np.float64)


def photo_texture(rng, h, w):
    """Photo-like: smooth shapes and light, fine grain, high-frequency texture and edges."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([smooth_noise(rng, h, w, 200) for _ in range(3)], -1) * 160 + 40
    light = (0.6 + 0.4 * np.sin(6 * xx + 3 * yy))[..., None]
    grass = np.sin(xx * w * 0.9 + 4 * smooth_noise(rng, h, w, 30)) * 25  # ~1.1 px period stripes
    fine = rng.normal(0, 8, (h, w, 1)) + rng.normal(0, 4, (h, w, 3))
    mid = (smooth_noise(rng, h, w, 6) - 0.5)[..., None] * 90
    edges = ((smooth_noise(rng, h, w, 80) > 0.55) * 50.0)[..., None]
    img = base * light + grass[..., None] * np.array([0.6, 1.0, 0.4]) + fine + mid + edges
    return np.clip(img, 0, 255).astype(np.uint8)


def text_art(w, h, dark_bg=False):
    fg, bg = ((235, 235, 235), (20, 24, 28)) if dark_bg else ((10, 10, 10), (255, 255, 255))
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    try:
        font = ImageFont.load_default(size=22)
        small = ImageFont.load_default(size=13)
    except TypeError:  # Pillow without FreeType
        font = small = ImageFont.load_default()
    y = 20
    for i in range(18):
        d.text((30, y), f"Line {i}: the quick brown fox jumps over the lazy dog 0123456789",
               fill=fg, font=font if i % 3 else small)
        y += 28 if i % 3 else 18
    for i in range(0, w, 7):  # 1-px hairlines
        d.line([(i, h - 260), (i + 120, h - 10)], fill=fg, width=1)
    a = np.asarray(im).copy()
    yy, xx = np.mgrid[0:200, 0:200]
    check = ((xx + yy) % 2 == 0)[..., None]  # 1-px checkerboard
    a[h - 220:h - 20, w - 220:w - 20] = np.where(check, np.array(fg), np.array(bg))
    for k, x0 in enumerate(range(w - 520, w - 260, 4)):  # 1-px and 2-px bars
        a[h - 220:h - 20, x0:x0 + 1 + (k % 2)] = fg
    return a


def transparency(rng, w, h, photo):
    """RGBA with soft edges, holes and fully transparent pixels of random colour (which a
    resize must ignore: premultiplied alpha)."""
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = w / 2, h / 2
    r = np.hypot((xx - cx) / (w * 0.42), (yy - cy) / (h * 0.42))
    alpha = np.clip((1.0 - r) * 6, 0, 1)
    alpha *= np.where(((xx // 40 + yy // 40) % 5 == 0), 0.0, 1.0)  # square holes
    alpha = np.maximum(alpha, ((xx % 97) < 2) * 0.8)  # thin opaque strokes
    if photo:
        rgb = photo_texture(rng, h, w).astype(np.float64)
    else:
        rgb = np.stack([xx * 255.0 / w, yy * 255.0 / h, 255.0 - xx * 255.0 / w], -1)
        rgb[((xx // 9) % 2 == 0)] = (250, 40, 30)
    garbage = rng.integers(0, 256, (h, w, 3))
    rgb = np.where((alpha == 0)[..., None], garbage, rgb)
    return np.dstack([rgb, alpha * 255]).round().clip(0, 255).astype(np.uint8)


def gradient(w, h, kind):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "linear":
        rgb = np.stack([xx / w * 255, yy / h * 255, (1 - xx / w) * 200 + 30], -1)
    else:
        r = np.hypot(xx - w * 0.3, yy - h * 0.6) / max(w, h)
        rgb = np.stack([255 * (1 - r), 120 + 100 * np.sin(r * 7), 255 * r], -1)
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def make_synthetic(folder):
    """Writes the synthetic inputs; the same files every run (fixed seeds)."""
    rng = np.random.default_rng(18)
    os.makedirs(folder, exist_ok=True)
    def save(name, arr, **kw):
        Image.fromarray(arr).save(os.path.join(folder, name), **kw)
    # The shape of the worst real case: ~1.4 MP progressive, a 1/4 DCT decode lands just
    # above the output size.
    save("photo--texture-1365x1074-progressive.jpg", photo_texture(rng, 1074, 1365),
         quality=92, progressive=True, subsampling="4:2:0")
    save("photo--texture-2700x1800-420.jpg", photo_texture(rng, 1800, 2700), quality=90, subsampling="4:2:0")
    save("photo--texture-1400x1400-444.jpg", photo_texture(rng, 1400, 1400), quality=95, subsampling="4:4:4")
    save("photo--texture-1300x900.png", photo_texture(rng, 900, 1300))
    save("text-line-art--light-1200x900.png", text_art(1200, 900))
    save("text-line-art--dark-1400x1000.png", text_art(1400, 1000, dark_bg=True))
    save("text-line-art--light-q90-1200x900.jpg", text_art(1200, 900), quality=90)
    save("transparency--flat-1200x900.png", transparency(rng, 1200, 900, photo=False))
    save("transparency--photo-1000x1000.png", transparency(rng, 1000, 1000, photo=True))
    save("gradient--linear-1920x1080.png", gradient(1920, 1080, "linear"))
    save("gradient--radial-1600x1200.jpg", gradient(1600, 1200, "radial"), quality=90)


# --- the run -----------------------------------------------------------------------------

def pillow_thumb(path, out):
    """Pillow's own thumbnail(): JPEG draft and a box reduce, both leaving 2× for Lanczos3
    (reducing_gap=2.0, its default)."""
    im = Image.open(path)
    im.thumbnail((BOX, BOX), Image.LANCZOS)
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGB")
    im.save(out)


def collect(folders):
    files = []
    for folder in folders:
        files += sorted(
            os.path.join(folder, f) for f in os.listdir(folder)
            if f.lower().endswith((".png", ".jpg", ".jpeg"))
            and os.path.getsize(os.path.join(folder, f)) <= MAX_BYTES
        )
    return files


def measure(files, thumbd, space, tmp):
    """Runs the three tools on `files` and scores each output. One row per file."""
    t_dir, v_dir, p_dir = (os.path.join(tmp, d) for d in ("thumbd", "vips", "pillow"))
    for d in (t_dir, v_dir, p_dir):
        os.makedirs(d, exist_ok=True)
    env = dict(os.environ, THUMBD_RESIZE_SPACE=space)
    subprocess.run([thumbd, "thumb", *files, "-o", t_dir], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    linear = ["--linear"] if space == "linear" else []
    for f in files:
        subprocess.run(["vipsthumbnail", "-s", f"{BOX}x{BOX}", *linear, "-o",
                        os.path.join(v_dir, "%s.png"), f], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        decoded = full_decode(f)
        p_png = os.path.join(p_dir, stem + ".png")
        pillow_thumb(f, p_png)
        refs = {}
        row = dict(name=os.path.basename(f), cls=classify(f, decoded),
                   size="×".join(map(str, decoded.size)))
        for key, out in (("t", os.path.join(t_dir, stem + ".png")),
                         ("v", os.path.join(v_dir, stem + ".png")), ("p", p_png)):
            row[key] = score(out, f, space, decoded, refs)
        rows.append(row)
        print(f"{row['name']}: {row['cls']}: thumbd {row['t']:.5f} vips {row['v']:.5f} "
              f"Pillow {row['p']:.5f}", file=sys.stderr)
    return rows


def mean(xs):
    return statistics.mean(xs) if xs else float("nan")


def report(rows, space, folders, n_synthetic):
    import PIL
    vips_v = subprocess.run(["vipsthumbnail", "--vips-version"], capture_output=True, text=True).stdout.strip()
    where = " ".join(os.path.basename(os.path.normpath(f)) for f in folders)
    cmd = f"python3 benches/quality.py {where}".strip() + (" --space linear" if space == "linear" else "")
    lines = [
        f"{platform.platform()}; {vips_v}; Pillow {PIL.__version__}. Command: `{cmd}` "
        f"({n_synthetic} synthetic files" + (f", {len(rows) - n_synthetic} from {where}" if folders else "") + "). "
        f"Reference: Lanczos3 of the full decode in {'linear light' if space == 'linear' else 'sRGB (gamma) space'}"
        + ("; thumbd with `THUMBD_RESIZE_SPACE=linear`, vipsthumbnail with `--linear`" if space == "linear" else "")
        + ".",
        "",
        "| image | class | size | DSSIM thumbd | vips | Pillow |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        mark = " ⚠" if r["t"] > r["v"] else ""
        lines.append(f"| {r['name']} | {r['cls']} | {r['size']} | {r['t']:.5f}{mark} | {r['v']:.5f} | {r['p']:.5f} |")
    lines += ["", "| class | files | mean DSSIM thumbd | vips | Pillow |", "|---|---:|---:|---:|---:|"]
    for cls in CLASSES:
        sel = [r for r in rows if r["cls"] == cls]
        if sel:
            lines.append(f"| {cls} | {len(sel)} | {mean([r['t'] for r in sel]):.5f} | "
                         f"{mean([r['v'] for r in sel]):.5f} | {mean([r['p'] for r in sel]):.5f} |")
    groups = [("all", rows), ("synthetic", rows[:n_synthetic])]
    if folders:
        groups.append((where, rows[n_synthetic:]))
    for label, sel in groups:
        t, v, p = (mean([r[k] for r in sel]) for k in ("t", "v", "p"))
        lines.append(f"| **{label}** | {len(sel)} | **{t:.5f}** | {v:.5f} | {p:.5f} |")
    worse = [r for r in rows if r["t"] > r["v"]]
    t_all, p_all = mean([r["t"] for r in rows]), mean([r["p"] for r in rows])
    lines += [
        "",
        f"- thumbd's mean is {t_all / p_all:.2f}× Pillow's (target ≤ 1.2×).",
        "- Worse than vipsthumbnail (⚠): " + (", ".join(
            f"{r['name']} ({r['t']:.5f} vs {r['v']:.5f})" for r in worse) if worse else "none") + ".",
    ]
    return "\n".join(lines), worse


def write_between(path, begin, end, text):
    content = open(path).read()
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(path, "w").write(f"{head}{begin}\n{text}\n{end}{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", help="folders of real PNG/JPEG files (optional)")
    ap.add_argument("--thumbd", default=os.environ.get("CARGO_TARGET_DIR", "target") + "/release/thumbd")
    ap.add_argument("--space", choices=("srgb", "linear"), default="srgb")
    ap.add_argument("--write", help="Markdown file to update between the markers")
    ap.add_argument("--keep", help="keep the inputs and thumbnails in this folder")
    args = ap.parse_args()
    thumbd = os.path.abspath(args.thumbd)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        synth = os.path.join(work, "synthetic")
        make_synthetic(synth)
        synthetic = collect([synth])
        files = synthetic + collect(args.folders)
        rows = measure(files, thumbd, args.space, work)
        text, worse = report(rows, args.space, args.folders, len(synthetic))
    print(text)
    if args.write:
        tag = "quality-linear" if args.space == "linear" else "quality"
        write_between(args.write, f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
