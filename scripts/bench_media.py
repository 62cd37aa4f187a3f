"""Benchmark: process_image (both styles + hashes) against pyvips thumbnail at the same sizes.

Usage: python scripts/bench_media.py [--images 20] [--rounds 3] [--keep DIR]

Generates photo-like 12 MP JPEGs (orientation tags, camera EXIF, sensor-like noise) in a temp
directory, then times each contender in its own child process (so each peak RSS is its own),
alternating contenders for --rounds rounds and keeping each one's best round.
Target (issue 3): ratio <= 1.0 and peak RSS <= 250 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH, HEIGHT = 4000, 3000  # 12 MP, a typical phone camera
ORIENTATIONS = (1, 6, 1, 8, 3, 6)


def generate(directory: Path, count: int) -> list[Path]:
    """Write count photo-like JPEGs: smooth scene + fine detail + per-pixel sensor noise."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rnd = random.Random(12)
    pad = 96
    # Noise fields are made once and cropped at random offsets: effect_noise is slow at 12 MP.
    grain = [Image.effect_noise((WIDTH + pad, HEIGHT + pad), 7) for _ in range(3)]
    detail = Image.effect_noise(((WIDTH + pad) // 3, (HEIGHT + pad) // 3), 30).resize(
        (WIDTH + pad, HEIGHT + pad), Image.Resampling.BILINEAR
    )
    paths = []
    for i in range(count):
        small = (WIDTH // 8, HEIGHT // 8)
        base = Image.new("RGB", small)
        draw = ImageDraw.Draw(base)
        top = [rnd.randrange(60, 200) for _ in range(3)]
        bottom = [rnd.randrange(20, 160) for _ in range(3)]
        for y in range(small[1]):
            t = y / small[1]
            colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
            draw.line([(0, y), (small[0], y)], fill=colour)
        for _ in range(30):
            x, y, r = rnd.randrange(small[0]), rnd.randrange(small[1]), rnd.randrange(8, 120)
            fill = tuple(rnd.randrange(256) for _ in range(3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        base = base.filter(ImageFilter.GaussianBlur(1.5)).resize(
            (WIDTH, HEIGHT), Image.Resampling.BICUBIC
        )
        ox, oy = rnd.randrange(pad), rnd.randrange(pad)
        box = (ox, oy, ox + WIDTH, oy + HEIGHT)
        texture = detail.crop(box)
        channels = [
            ImageChops.add(ImageChops.add(c, g.crop(box), 1.0, -128), texture, 1.0, -128)
            for c, g in zip(base.split(), grain, strict=True)
        ]
        photo = Image.merge("RGB", channels)
        orientation = ORIENTATIONS[i % len(ORIENTATIONS)]
        exif = Image.Exif()
        exif[0x0112] = orientation
        exif[0x010F] = "BenchCam"
        exif[0x0110] = "Model 12"
        exif[0x8825] = {1: "N", 2: (43.0, 14.0, 17.0), 3: "E", 4: (76.0, 53.0, 21.0)}
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=90, exif=exif, comment=b"bench")
        path = directory / f"photo_{i:02d}_o{orientation}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_pillow(paths: list[Path]) -> dict[str, float]:
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)  # run from a checkout without installing the package
    from aggregator.media import process_image

    process_image(paths[0].read_bytes())  # warm-up: imports, codec tables, ICC set-up
    sizes = []
    start = time.perf_counter()
    for path in paths:  # read one at a time, as an upload handler would hold one body
        result = process_image(path.read_bytes())
        sizes.append(len(result.slide.data))
    elapsed = time.perf_counter() - start
    return {
        "ms": elapsed * 1000 / len(paths),
        "rss": peak_rss_mb(),
        "slide_kb": statistics.median(sizes) / 1024,
    }


def run_vips(paths: list[Path]) -> dict[str, float]:
    import pyvips

    pyvips.cache_set_max(0)

    def both(data: bytes) -> int:
        slide = pyvips.Image.thumbnail_buffer(data, 1920, height=1080, size="down")
        thumb = pyvips.Image.thumbnail_buffer(data, 480, height=480, size="down")
        out = slide.jpegsave_buffer(Q=82, keep="none")
        thumb.jpegsave_buffer(Q=80, keep="none")
        return len(out)

    both(paths[0].read_bytes())
    sizes = []
    start = time.perf_counter()
    for path in paths:
        sizes.append(both(path.read_bytes()))
    elapsed = time.perf_counter() - start
    return {
        "ms": elapsed * 1000 / len(paths),
        "rss": peak_rss_mb(),
        "slide_kb": statistics.median(sizes) / 1024,
    }


def child(contender: str, directory: Path) -> dict[str, float]:
    """Run one contender in a fresh interpreter and return its measurements."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", contender, str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into (or reuse) this directory")
    parser.add_argument("--worker", nargs=2, metavar=("CONTENDER", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        contender, directory = args.worker
        paths = sorted(Path(directory).glob("photo_*.jpg"))
        runner = run_pillow if contender == "pillow" else run_vips
        print(json.dumps(runner(paths)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_media_") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(directory.glob("photo_*.jpg"))
        if len(paths) < args.images:
            started = time.perf_counter()
            # Generated in a child too, so its memory does not count against either contender.
            subprocess.run(
                [sys.executable, "-c", _GENERATE, str(directory), str(args.images)], check=True
            )
            paths = sorted(directory.glob("photo_*.jpg"))
            print(f"generated {len(paths)} images in {time.perf_counter() - started:.1f} s")
        mb = statistics.mean(p.stat().st_size for p in paths) / 2**20
        print(f"{len(paths)} JPEGs {WIDTH}x{HEIGHT}, mean {mb:.1f} MB, orientations {ORIENTATIONS}")

        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for contender in ("pillow", "vips"):
                result = child(contender, directory)
                if contender not in best or result["ms"] < best[contender]["ms"]:
                    best[contender] = result
        pil, vips = best["pillow"], best["vips"]
        print(
            f"process_image (Pillow): {pil['ms']:7.1f} ms/image  peak RSS {pil['rss']:6.1f} MB"
            f"  median slide {pil['slide_kb']:.0f} KB"
        )
        print(
            f"pyvips thumbnail x2:    {vips['ms']:7.1f} ms/image  peak RSS {vips['rss']:6.1f} MB"
            f"  median slide {vips['slide_kb']:.0f} KB"
        )
        ratio = pil["ms"] / vips["ms"]
        verdict = "OK" if ratio <= 1.0 and pil["rss"] <= 250 else "MISSED"
        print(f"ratio Pillow/pyvips: {ratio:.2f} (target <= 1.0, peak RSS <= 250 MB): {verdict}")


_GENERATE = (
    "import sys; from pathlib import Path; "
    f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
    "import bench_media; bench_media.generate(Path(sys.argv[1]), int(sys.argv[2]))"
)

if __name__ == "__main__":
    main()
