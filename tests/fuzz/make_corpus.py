#!/usr/bin/env python3
"""Writes the committed seed corpora under tests/fuzz/corpus/<target>/.

Each seed is tiny and made here by hand (no image library): the build adds
codec-made image seeds on top (make_image_seeds.cc). Run it again after
changing it; the output is deterministic and committed.
"""
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


# --- images -----------------------------------------------------------------

def png(width, height, color_type=0, bit_depth=8, channels=1):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    row = bytes((width * channels * bit_depth + 7) // 8)
    raw = b"".join(b"\0" + row for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg_gray8x8():
    """A valid 8x8 gray baseline JPEG: one-code Huffman tables, one flat block."""
    def segment(marker, body):
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
    dqt = segment(0xDB, b"\x00" + bytes([1] * 64))
    sof = segment(0xC0, b"\x08" + struct.pack(">HH", 8, 8) + b"\x01" + b"\x01\x11\x00")
    one_code = bytes([1] + [0] * 15) + b"\x00"   # one 1-bit code for symbol 0
    dht = segment(0xC4, b"\x00" + one_code + b"\x10" + one_code)  # DC 0, AC 0
    sos = segment(0xDA, b"\x01" + b"\x01\x00" + b"\x00\x3f\x00")
    # DC category 0 ("0"), AC end-of-block ("0"), padded with ones.
    return b"\xff\xd8" + dqt + sof + dht + sos + b"\x3f" + b"\xff\xd9"


class Bits:
    """LSB-first bit writer (VP8L)."""
    def __init__(self):
        self.value, self.count = 0, 0

    def put(self, value, n):
        self.value |= value << self.count
        self.count += n

    def bytes(self):
        return self.value.to_bytes((self.count + 7) // 8, "little")


def webp_lossless(width, height):
    """A VP8L image of one colour: no transforms, five one-symbol codes."""
    bits = Bits()
    bits.put(0x2F, 8)
    bits.put(width - 1, 14)
    bits.put(height - 1, 14)
    bits.put(0, 1)  # alpha hint
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta Huffman codes
    for _ in range(5):  # green, red, blue, alpha, distance: simple, 1 symbol
        bits.put(1, 1)
        bits.put(0, 1)
        bits.put(0, 1)
        bits.put(0, 1)
    vp8l = bits.bytes()
    if len(vp8l) % 2:
        vp8l += b"\0"
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8x_header(width, height):
    """VP8X header only (canvas size, no image chunk): the header parser's path."""
    vp8x = b"\0\0\0\0" + struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def images(target):
    write(target, "gray8x8.jpg", jpeg_gray8x8())
    write(target, "gray3x2.png", png(3, 2))
    write(target, "rgb1x1.png", png(1, 1, color_type=2, channels=3))
    write(target, "gray16_4x1.png", png(4, 1, bit_depth=16))
    write(target, "one_colour2x3.webp", webp_lossless(2, 3))
    write(target, "vp8x_header.webp", webp_vp8x_header(640, 480))


# --- chain specs (proto JSON) --------------------------------------------------

SPECS = {
    "download_resize_upload.json": {
        "spec": {"steps": [
            {"download": {"url": "https://example.com/a.jpg", "maxBytes": "1048576"}},
            {"resize": {"width": 800, "height": 600, "fit": "COVER", "shrinkOnLoad": "FAST",
                        "output": {"format": "IMAGE_FORMAT_WEBP", "quality": 80}}},
            {"upload": {"destination": "file:///tmp/out", "keyTemplate": "{chain}/{step}"}},
        ], "labels": {"team": "web"}, "priority": "PRIORITY_HIGH", "timeout": "600s"},
        "idempotencyKey": "order-42"},
    "filters_webhook.json": {
        "spec": {"steps": [
            {"download": {"url": "http://example.com/b.png"}},
            {"filter": {"ops": [{"grayscale": {}}, {"gaussianBlur": {"sigma": 2.5}},
                                {"sharpen": {"amount": 1, "sigma": 1}}, {"sepia": {}},
                                {"brightnessContrast": {"brightness": 10, "contrast": 1.2}},
                                {"invert": {}}, {"edgeDetect": {"lowThreshold": 100,
                                                                "highThreshold": 200}}]}},
            {"webhook": {"url": "https://hooks.example.com/x"}},
        ]}},
    "inline_source.json": {
        "spec": {"steps": [{"resize": {"width": 64}},
                           {"upload": {"destination": "s3://bucket/prefix"}}]},
        "source": {"data": "iVBORw0KGgo=", "mediaType": "image/png"}},
    "retry_policy.json": {
        "spec": {"steps": [{
            "download": {"url": "https://example.com/c.webp"},
            "retry": {"maxAttempts": 5, "initialBackoff": "0.5s", "maxBackoff": "30s",
                      "backoffMultiplier": 2.0, "jitter": 0.2,
                      "retryableCodes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"]},
            "timeout": "10s"}]}},
    "bare_spec.json": {"steps": [{"download": {"url": "https://example.com/d.jpg"}},
                                 {"resize": {"height": 100, "fit": "INSIDE"}}]},
    "type_error.json": {"spec": {"steps": [{"upload": {"destination": "file:///x"}},
                                           {"resize": {"width": 1}}]}},
}


# --- URLs and addresses --------------------------------------------------------

ADDRESSES = [
    "http://example.com/", "https://user:pw@example.com:8443/p/a.jpg?q=1#f",
    "http://[::1]:80/", "http://[fe80::1%25eth0]/", "HTTP://127.1/", "ftp://example.com/",
    "http://0x7f000001/", "http://2130706433/", "https://xn--nxasmq6b.example/",
    "127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "100.100.100.200",
    "::1", "[::1]", "::", "::ffff:10.0.0.1", "::ffff:0:127.0.0.1", "::127.0.0.1",
    "64:ff9b::a00:1", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "fd00:ec2::254", "fe80::1", "ff02::1", "2606:4700::1111", "8.8.8.8",
    "10.0.0.0/8", "127.0.0.1/32", "fd00::/8", "::ffff:0:0/96", "0.0.0.0/0", "::/0",
    "10.0.0.1/8", "1.2.3.4/33", "fe80::/129",
]


# --- CLI flags (FuzzedDataProvider layout) -------------------------------------

def flags(strings, tail=b""):
    """Strings as ConsumeRandomLengthString reads them ("\\" then any other
    byte ends one), then `tail`: integers and bools come from the end."""
    out = b""
    for s in strings:
        out += s.replace("\\", "\\\\").encode() + b"\\ "
    return out + tail


FLAG_SEEDS = {
    # url, resize, fit, format, [filters...], upload, key, webhook, timeout, ...
    "download_resize.bin": flags(["https://example.com/a.jpg", "800x600", "cover", "webp",
                                  "grayscale", "file:///tmp/out", "{chain}.{ext}",
                                  "https://hooks.example.com/", "30s", "high", "team=web",
                                  "key-1", "1h30m", "2d"], b"\x01\x05\x50\x00\x01"),
    "filters.bin": flags(["", "x600", "inside", "png", "blur:sigma=2",
                          "sharpen:amount=1,sigma=1", "edges:low=100,high=200",
                          "s3://bucket/prefix", "", "", "500ms", "low", "a=b", "", "7d",
                          "2026-11-26T10:00:00Z"], b"\x03\x02\x00\x01"),
    "spec_json.bin": flags(["", "", "", "", "", "", "", "", "", "normal", "", "", ""],
                           json.dumps(SPECS["bare_spec.json"]).encode()),
    "batch_lines.bin": flags(["http://example.com/x.jpg", "800x"],
                             b"# comment\n  http://a.example/1.png \n\n/tmp/b.jpg\n"),
}


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    images("image_header_fuzz")
    images("image_decode_fuzz")
    for name, spec in SPECS.items():
        write("chain_spec_fuzz", name, json.dumps(spec, indent=1) + "\n")
    for i, text in enumerate(ADDRESSES):
        write("url_ssrf_fuzz", "seed%02d" % i, text)
    for name, data in FLAG_SEEDS.items():
        write("chain_builder_fuzz", name, data)


if __name__ == "__main__":
    main()
