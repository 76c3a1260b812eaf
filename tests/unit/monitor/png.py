"""A minimal PNG reader (8-bit RGB/RGBA, not interlaced) so screenshot tests need no Pillow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> samples per pixel


def _unfilter_sequential(kind: int, line: bytearray, previous: bytes, channels: int) -> None:
    """Average and Paeth depend on the already-decoded left byte: decode in place, in order."""
    for x in range(len(line)):
        left = line[x - channels] if x >= channels else 0
        up = previous[x]
        if kind == 3:
            line[x] = (line[x] + ((left + up) >> 1)) & 0xFF
            continue
        upper_left = previous[x - channels] if x >= channels else 0
        p = left + up - upper_left
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
        predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
        line[x] = (line[x] + predictor) & 0xFF


def read_png(path: Path) -> np.ndarray:
    """The image as a (height, width, 3) uint8 RGB array."""
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{path} is not a PNG")
    offset, chunks, header = len(SIGNATURE), [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in CHANNELS or interlace:
        raise ValueError(
            f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
        )
    channels = CHANNELS[colour]
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    rows = raw.reshape(height, stride + 1)
    image = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            decoded = line.copy()
        elif kind == 1:  # Sub: a running sum (mod 256) of each channel along the row
            pixels = line.reshape(width, channels).astype(np.uint64)
            decoded = (np.cumsum(pixels, axis=0) % 256).astype(np.uint8).ravel()
        elif kind == 2:  # Up
            decoded = line + previous
        elif kind in (3, 4):
            buffer = bytearray(line.tobytes())
            _unfilter_sequential(kind, buffer, previous.tobytes(), channels)
            decoded = np.frombuffer(bytes(buffer), dtype=np.uint8)
        else:
            raise ValueError(f"unknown PNG filter type {kind} on row {y}")
        image[y] = decoded
        previous = decoded
    return image.reshape(height, width, channels)[:, :, :3]
