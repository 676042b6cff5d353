"""The dashboard's home-screen icons (PNG), drawn from the same shapes as ``static/icon.svg``.

A phone adds the page to its home screen from the web app manifest, which
wants bitmaps (192 and 512 px). They are committed in ``static/`` and served
by the station like the rest of the page; this module is how they are made,
with the standard library only (no image library on the station or in the
build): ``python -m chargepoint.web.icons`` writes them again, and a unit test
checks that the committed files are what it draws.

The icon is a lightning bolt on a rounded square, the bolt inside the middle
80 % so that a launcher's round or squircle mask (``"purpose": "maskable"``)
never cuts it.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZES = (192, 512)
BACKGROUND = (15, 118, 110)  # #0f766e, the page's accent
BOLT = (255, 255, 255)
#: The bolt on a 0..100 square (the SVG's viewBox), clockwise.
BOLT_POINTS = ((56, 14), (26, 56), (47, 56), (40, 86), (74, 42), (53, 42), (60, 14))
#: Samples per pixel along each axis (antialiasing).
SAMPLES = 3
STATIC = Path(__file__).parent / "static"


def _inside(x: float, y: float, polygon: tuple[tuple[float, float], ...]) -> bool:
    """Even-odd rule."""
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def pixels(size: int) -> list[bytes]:
    """Rows of RGBA bytes: the bolt on the full square (maskable icons have no transparent corners)."""
    rows = []
    scale = 100.0 / size
    for py in range(size):
        row = bytearray()
        for px in range(size):
            hits = 0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    x = (px + (sx + 0.5) / SAMPLES) * scale
                    y = (py + (sy + 0.5) / SAMPLES) * scale
                    hits += _inside(x, y, BOLT_POINTS)
            share = hits / SAMPLES ** 2
            row += bytes(round(b * (1 - share) + f * share) for b, f in zip(BACKGROUND, BOLT, strict=True))
            row.append(255)
        rows.append(bytes(row))
    return rows


def png(size: int) -> bytes:
    """One icon as a PNG file (8-bit RGBA, no filter)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + row for row in pixels(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def main() -> int:
    for size in SIZES:
        path = STATIC / f"icon-{size}.png"
        path.write_bytes(png(size))
        print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
