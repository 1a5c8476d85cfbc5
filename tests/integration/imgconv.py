"""Test images without PIL: read an 8-bit PNG (zlib + the PNG row filters),
enlarge it by an integer factor (pixel repetition), write it back as PNG
(zlib) or as JPEG (TurboJPEG through ctypes, the library the daemon decodes
with). Used by test_hardening_dct.py and tests/bench/jpeg_dct_scale.py."""
import ctypes
import ctypes.util
import struct
import zlib

CHANNELS = {0: 1, 2: 3}  # colour type -> samples a pixel (8-bit gray, RGB)


def _chunks(b):
    at = 8
    while at + 8 <= len(b):
        n, kind = struct.unpack(">I4s", b[at:at + 8])
        yield kind, b[at + 8:at + 8 + n]
        at += 12 + n


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def read_png(b):
    """(width, height, channels, rows as bytes) of a non-interlaced 8-bit
    gray or RGB PNG."""
    idat = []
    for kind, data in _chunks(b):
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data)
            if depth != 8 or ctype not in CHANNELS or interlace:
                raise ValueError("only 8-bit gray/RGB non-interlaced PNGs")
        elif kind == b"IDAT":
            idat.append(data)
    raw = zlib.decompress(b"".join(idat))
    bpp = CHANNELS[ctype]
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                cur[i] = (cur[i] + a) & 255
            elif f == 2:
                cur[i] = (cur[i] + prev[i]) & 255
            elif f == 3:
                cur[i] = (cur[i] + (a + prev[i]) // 2) & 255
            elif f == 4:
                cur[i] = (cur[i] + _paeth(a, prev[i], c)) & 255
        rows.append(bytes(cur))
        prev = cur
    return w, h, bpp, rows


def enlarge(img, k):
    """Every pixel repeated k x k times."""
    w, h, bpp, rows = img
    out = []
    for r in rows:
        px = [r[i:i + bpp] for i in range(0, len(r), bpp)]
        big = b"".join(p * k for p in px)
        out.extend([big] * k)
    return w * k, h * k, bpp, out


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


def write_png(img):
    w, h, bpp, rows = img
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if bpp == 1 else 2, 0, 0, 0)
    data = zlib.compress(b"".join(b"\x00" + r for r in rows), 6)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data)
            + _chunk(b"IEND", b""))


_tj = None


def write_jpeg(img, quality=95):
    """Baseline JPEG, 4:4:4 (gray: one component), at the given quality."""
    global _tj
    if _tj is None:
        name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
        _tj = ctypes.CDLL(name)
        _tj.tjInitCompress.restype = ctypes.c_void_p
        _tj.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                    ctypes.c_int, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_void_p),
                                    ctypes.POINTER(ctypes.c_ulong), ctypes.c_int, ctypes.c_int,
                                    ctypes.c_int]
        _tj.tjFree.argtypes = [ctypes.c_void_p]
        _tj.tjDestroy.argtypes = [ctypes.c_void_p]
    w, h, bpp, rows = img
    TJPF_RGB, TJPF_GRAY, TJSAMP_444, TJSAMP_GRAY = 0, 6, 0, 3
    pf, samp = (TJPF_GRAY, TJSAMP_GRAY) if bpp == 1 else (TJPF_RGB, TJSAMP_444)
    handle = _tj.tjInitCompress()
    buf, size = ctypes.c_void_p(), ctypes.c_ulong()
    rc = _tj.tjCompress2(handle, b"".join(rows), w, 0, h, pf, ctypes.byref(buf),
                         ctypes.byref(size), samp, quality, 0)
    try:
        if rc != 0:
            raise RuntimeError("tjCompress2 failed")
        return ctypes.string_at(buf, size.value)
    finally:
        _tj.tjFree(buf)
        _tj.tjDestroy(handle)


def png_size(b):
    """(width, height) from a PNG's IHDR."""
    return struct.unpack(">II", b[16:24])
