"""Brute-force bilinear interpolation shared by the sampling tests."""
import math


def bilinear_zero_pad(img, x: float, y: float) -> float:
    """Bilinear value of ``img`` (H, W) at normalised ``(x, y)``, loop by loop.

    ``align_corners=False``: pixel ``(i, j)`` has its centre at
    ``((j + 0.5) / W, (i + 0.5) / H)``; pixels outside the map are 0.
    Works on numpy arrays and torch tensors.
    """
    h, w = img.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    fx, fy = px - x0, py - y0
    total = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            i, j = y0 + dy, x0 + dx
            if 0 <= i < h and 0 <= j < w:
                total += wy * wx * float(img[i, j])
    return total
