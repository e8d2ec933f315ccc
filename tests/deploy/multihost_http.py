#!/usr/bin/env python3
"""The outside world of the multi-host test: an HTTP server that serves a test
image and receives webhooks.

  GET  /img/<anything>.png  -> a PNG made here at start-up (no files shipped)
  POST /hook                -> 204; appends {"webhook_id", "chain", "bytes"}
                               as one JSON line to --hook-log

Prints "ready" on stdout once it listens.
"""

import argparse
import json
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_png(width, height):
    """An RGB PNG of diagonal stripes: cheap to build here, real to decode."""
    period = 768  # a multiple of 3 keeps the channels aligned row to row
    sequence = bytes((i * 7 + (i // 3) * 13) & 255 for i in range(width * 3 + period))
    rows = []
    for y in range(height):
        start = (y * 3 * 5) % period
        rows.append(b"\x00" + sequence[start:start + width * 3])
    raw = b"".join(rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--width", type=int, default=2400)
    parser.add_argument("--height", type=int, default=1800)
    parser.add_argument("--hook-log", required=True)
    args = parser.parse_args()

    image = make_png(args.width, args.height)
    hook_lock = threading.Lock()
    hook_log = open(args.hook_log, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *fmt_args):  # one line per request on stderr
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % fmt_args))

        def do_GET(self):
            if self.path.startswith("/img/") and self.path.endswith(".png"):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)
            else:
                self.send_error(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path != "/hook":
                self.send_error(404)
                return
            chain = ""
            try:
                chain = json.loads(body).get("data", {}).get("chain", "")
            except ValueError:
                pass
            record = {"webhook_id": self.headers.get("webhook-id", ""),
                      "signature": bool(self.headers.get("webhook-signature")),
                      "chain": chain, "bytes": len(body)}
            with hook_lock:
                hook_log.write(json.dumps(record) + "\n")
                hook_log.flush()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
