#!/usr/bin/env python3
"""WebP output: bytes and DSSIM of lossless against lossy thumbnails (and JPEG, AVIF), per file.

    python3 benches/webp_quality.py FOLDER... [--thumbd target/release/thumbd]
                                    [--formats webp:80,webp:90,jpeg:85] [--write benches/README.md]

For every PNG/JPEG up to 5 MB in the FOLDERs, `thumbd thumb` makes the 330-box thumbnail as
`webp:lossless` and as each of the lossy `--formats` (no size budget, so each is what its
setting gives). Each is scored with DSSIM (quality.py's: 7×7 SSIM per RGB channel)
against the full-decode Lanczos3 reference, and the lossy ones also against the lossless
thumbnail, which isolates what the lossy encoding costs. With --write the table goes into
the file between <!-- webp:begin --> and <!-- webp:end -->.

Needs Pillow and numpy (pip), like quality.py.
"""
import argparse, os, statistics, subprocess, sys, tempfile

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality import collect, dssim, full_decode, reference, to_rgb_float, write_between  # noqa: E402


def thumb(thumbd, src, out_dir, fmt):
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([thumbd, "thumb", src, "-o", out_dir, "--format", fmt, "--budget", "0",
                    "--max-bytes", str(5 << 20)], check=True, capture_output=True)
    stem = os.path.splitext(os.path.basename(src))[0]
    ext = {"jpeg": ".jpg", "avif": ".avif"}.get(fmt.split(":")[0], ".webp")
    return os.path.join(out_dir, stem + ext)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--thumbd", default=os.environ.get("CARGO_TARGET_DIR", "target") + "/release/thumbd")
    ap.add_argument("--formats", default="webp:80,webp:90,jpeg:85")
    ap.add_argument("--write")
    args = ap.parse_args()
    qualities = args.formats.split(",")
    thumbd = os.path.abspath(args.thumbd)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in collect(args.folders):
            decoded = full_decode(src)
            outs = {"lossless": thumb(thumbd, src, os.path.join(tmp, "lossless"), "webp:lossless")}
            for q in qualities:
                outs[q] = thumb(thumbd, src, os.path.join(tmp, q.replace(":", "-")), q)
            images = {k: Image.open(v) for k, v in outs.items()}
            ref = to_rgb_float(reference(src, images["lossless"].size, "srgb", decoded))
            exact = to_rgb_float(images["lossless"])
            row = {"file": os.path.basename(src), "size": images["lossless"].size,
                   "lossless": (os.path.getsize(outs["lossless"]), dssim(exact, ref))}
            for q in qualities:
                lossy = to_rgb_float(images[q])
                row[q] = (os.path.getsize(outs[q]), dssim(lossy, ref), dssim(lossy, exact))
            rows.append(row)
    head = "| image | size | lossless bytes / DSSIM | " + " | ".join(
        f"{q} bytes / DSSIM / vs lossless" for q in qualities) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(qualities)]
    for r in rows:
        cells = [f"{r['lossless'][0]:,} / {r['lossless'][1]:.5f}"]
        cells += [f"{r[q][0]:,} / {r[q][1]:.5f} / {r[q][2]:.5f}" for q in qualities]
        lines.append(f"| {r['file']} | {r['size'][0]}×{r['size'][1]} | " + " | ".join(cells) + " |")
    mean = lambda xs: statistics.mean(xs) if xs else 0.0
    cells = [f"{mean([r['lossless'][0] for r in rows]):,.0f} / {mean([r['lossless'][1] for r in rows]):.5f}"]
    for q in qualities:
        cells.append(f"{mean([r[q][0] for r in rows]):,.0f} / {mean([r[q][1] for r in rows]):.5f} / "
                     f"{mean([r[q][2] for r in rows]):.5f}")
    lines.append("| **mean** | | " + " | ".join(cells) + " |")
    text = (f"Command: `python3 benches/webp_quality.py {' '.join(os.path.basename(os.path.normpath(f)) for f in args.folders)} --formats {args.formats}` "
            f"({len(rows)} files).\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.write:
        write_between(args.write, "<!-- webp:begin -->", "<!-- webp:end -->", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
