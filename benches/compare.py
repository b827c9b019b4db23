#!/usr/bin/env python3
"""Side-by-side comparison: thumbd vs vipsthumbnail vs Pillow, on one folder, in one run.

    python3 benches/compare.py FOLDER [--thumbd target/release/thumbd] [--write benches/README.md]

For every PNG/JPEG up to 5 MB in FOLDER it measures, with all three tools on the same machine
in the same run:
  * per-image time with process start-up excluded: each CLI is run on 1 and on K copies of the
    file in one invocation, and (t_K - t_1) / (K - 1) is taken, median of R repeats; Pillow is
    timed in-process (thumbnail(LANCZOS), whose defaults draft the JPEG and box-reduce
    leaving 2x for Lanczos, + PNG save);
  * output bytes;
  * quality: DSSIM = (1 - SSIM) / 2 (per-channel SSIM, 7x7 window, mean over RGB; alpha
    composited over mid-gray) against a reference made from a full decode: Pillow, EXIF
    transposed, ICC converted to sRGB, Lanczos3 in gamma space to the same output size
    (benches/quality.py, which also scores synthetic images and reports per class).
Then batch throughput over the whole folder on 2 cores: `thumbd thumb FOLDER` (rayon, two
threads) against `xargs -P2 -n1 vipsthumbnail` (one process per image, as a shell pipeline
would run it) and `xargs -P2 -n N/2 vipsthumbnail` (start-up amortised), and peak RSS on a
25-megapixel baseline JPEG made here. It prints a Markdown report and, with --write, puts it
into the given file between the markers <!-- compare:begin --> and <!-- compare:end -->.

Needs: vipsthumbnail (Debian libvips-tools), Pillow and numpy (pip).
"""
import argparse, io, math, os, platform, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np
from PIL import Image

# Quality scoring (reference, DSSIM) and Pillow's thumbnail are shared with quality.py.
from quality import pillow_thumb, score

BOX = 330
MAX_BYTES = 5 * 1024 * 1024


def run(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def per_image(cmd_for, path, tmp, k, repeats):
    """Seconds per image with start-up excluded: (t(K copies) - t(1)) / (K - 1)."""
    copies = []
    for i in range(k):
        c = os.path.join(tmp, f"copy{i}{os.path.splitext(path)[1]}")
        if not os.path.exists(c):
            shutil.copyfile(path, c)
        copies.append(c)
    one = statistics.median(run(cmd_for(copies[:1])) for _ in range(repeats))
    many = statistics.median(run(cmd_for(copies)) for _ in range(repeats))
    return max(many - one, 1e-6) / (k - 1), one


def peak_rss_kb(cmd):
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(r.stderr.strip().splitlines()[-1])


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--thumbd", default="target/release/thumbd")
    ap.add_argument("--copies", type=int, default=6, help="K: copies per invocation")
    ap.add_argument("--repeats", type=int, default=3, help="R: repeats per timing")
    ap.add_argument("--write", help="Markdown file to update between the markers")
    args = ap.parse_args()
    thumbd = os.path.abspath(args.thumbd)
    files = sorted(
        os.path.join(args.folder, f) for f in os.listdir(args.folder)
        if f.lower().endswith((".png", ".jpg", ".jpeg"))
        and os.path.getsize(os.path.join(args.folder, f)) <= MAX_BYTES
    )
    if not files:
        sys.exit(f"no PNG/JPEG files up to 5 MB in {args.folder}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            name = os.path.basename(path)
            work = os.path.join(tmp, "w"); os.makedirs(work, exist_ok=True)
            t_out, v_out = os.path.join(tmp, "t"), os.path.join(tmp, "v")
            os.makedirs(t_out, exist_ok=True); os.makedirs(v_out, exist_ok=True)
            t_img, _ = per_image(lambda fs: [thumbd, "thumb", *fs, "-o", t_out, "-j", "1"],
                                 path, work, args.copies, args.repeats)
            v_img, _ = per_image(lambda fs: ["vipsthumbnail", "-s", f"{BOX}x{BOX}", "-o", os.path.join(v_out, "%s.png"), *fs],
                                 path, work, args.copies, args.repeats)
            shutil.rmtree(work)
            p_png = os.path.join(tmp, "p.png")
            p_times = []
            for _ in range(args.repeats):
                t = time.perf_counter(); pillow_thumb(path, p_png); p_times.append(time.perf_counter() - t)
            t_png, v_png = os.path.join(t_out, "copy0.png"), os.path.join(v_out, "copy0.png")
            rows.append(dict(
                name=name, mp=Image.open(path).width * Image.open(path).height / 1e6,
                t=t_img, v=v_img, p=statistics.median(p_times),
                tb=os.path.getsize(t_png), vb=os.path.getsize(v_png), pb=os.path.getsize(p_png),
                tq=score(t_png, path), vq=score(v_png, path), pq=score(p_png, path),
            ))
            print(f"{name}: thumbd {t_img*1000:.1f} ms, vips {v_img*1000:.1f} ms", file=sys.stderr)
            shutil.rmtree(t_out); shutil.rmtree(v_out)

        # Batch throughput over the folder, 2 cores.
        batch = os.path.join(tmp, "batch"); os.makedirs(batch)
        for f in files:
            shutil.copyfile(f, os.path.join(batch, os.path.basename(f)))
        n = len(files)
        def xargs(per):
            lst = "\n".join(os.path.join(batch, os.path.basename(f)) for f in files)
            t = time.perf_counter()
            subprocess.run(["xargs", "-P2", "-n", str(per), "vipsthumbnail", "-s", f"{BOX}x{BOX}",
                            "-o", os.path.join(tmp, "%s.png")], input=lst, text=True, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - t
        t_batch = statistics.median(run([thumbd, "thumb", batch, "-o", os.path.join(tmp, "tb")]) for _ in range(args.repeats))
        v_batch1 = statistics.median(xargs(1) for _ in range(args.repeats))
        v_batchn = statistics.median(xargs(math.ceil(n / 2)) for _ in range(args.repeats))

        # Peak RSS on a 25 MP baseline JPEG.
        big = os.path.join(tmp, "25mp.jpg")
        yy, xx = np.mgrid[0:5000, 0:5000]
        arr = np.stack([(xx * 255 // 5000), (yy * 255 // 5000), ((xx + yy) % 256)], -1).astype(np.uint8)
        Image.fromarray(arr).save(big, quality=90)
        rss_t = peak_rss_kb([thumbd, "thumb", big, "-o", os.path.join(tmp, "rss")])
        rss_v = peak_rss_kb(["vipsthumbnail", "-s", f"{BOX}x{BOX}", "-o", os.path.join(tmp, "%s.png"), big])

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    vips_v = subprocess.run(["vipsthumbnail", "--vips-version"], capture_output=True, text=True).stdout.strip()
    import PIL
    lines = [
        f"Machine: {os.cpu_count()} cores, {cpu}; {platform.platform()}; {vips_v}; Pillow {PIL.__version__}.",
        f"Command: `python3 benches/compare.py {os.path.basename(os.path.normpath(args.folder))} --copies {args.copies} --repeats {args.repeats}` "
        f"({len(files)} files up to 5 MB).",
        "",
        "| image | MP | thumbd ms | vips ms | Pillow ms | thumbd/vips | bytes thumbd / vips / Pillow | DSSIM thumbd / vips / Pillow |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['mp']:.1f} | {r['t']*1000:.1f} | {r['v']*1000:.1f} | {r['p']*1000:.1f} | "
            f"{r['t']/r['v']:.2f} | {r['tb']:,} / {r['vb']:,} / {r['pb']:,} | "
            f"{r['tq']:.5f} / {r['vq']:.5f} / {r['pq']:.5f} |")
    gm = geomean([r["t"] / r["v"] for r in rows])
    q_t, q_v, q_p = (statistics.mean(r[k] for r in rows) for k in ("tq", "vq", "pq"))
    lines += [
        "",
        f"- Per image, start-up excluded, geometric mean of thumbd/vips: **{gm:.2f}×** (target ≤ 0.6×).",
        f"- Mean DSSIM (lower is better): thumbd **{q_t:.5f}**, vipsthumbnail {q_v:.5f}, Pillow {q_p:.5f}.",
        f"- Batch over the folder on 2 cores: thumbd {n / t_batch:.1f} images/s; "
        f"vipsthumbnail `xargs -P2 -n1` {n / v_batch1:.1f} images/s (**{v_batch1 / t_batch:.2f}×**), "
        f"`xargs -P2 -n{math.ceil(n / 2)}` {n / v_batchn:.1f} images/s ({v_batchn / t_batch:.2f}×). Target ≥ 2.5×.",
        f"- Peak RSS on a 25 MP baseline JPEG (5000×5000): thumbd {rss_t / 1024:.1f} MiB, vipsthumbnail {rss_v / 1024:.1f} MiB (target < 64 MB).",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        text = open(args.write).read()
        b, e = "<!-- compare:begin -->", "<!-- compare:end -->"
        head, rest = text.split(b, 1)
        _, tail = rest.split(e, 1)
        open(args.write, "w").write(f"{head}{b}\n{report}\n{e}{tail}")


if __name__ == "__main__":
    main()
