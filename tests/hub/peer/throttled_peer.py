#!/usr/bin/python3
"""A misbehaving peer for tests: serves /api/peer/v1/chunks/{id} by proxying a real hubnode,
sending the body at RATE bytes/s (a slow peer); 'corrupt' mode answers every request with random
bytes instead (a lying peer). Usage: throttled_peer.py PORT UPSTREAM_URL RATE|corrupt"""
import http.server
import os
import sys
import time
import urllib.request

PORT, UPSTREAM, MODE = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if MODE == "corrupt":
            body = os.urandom(4096)
        else:
            try:
                body = urllib.request.urlopen(UPSTREAM + self.path).read()
            except Exception:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if MODE == "corrupt":
            self.wfile.write(body)
            return
        rate = float(MODE)
        piece = max(1, int(rate / 20))
        for i in range(0, len(body), piece):
            self.wfile.write(body[i:i + piece])
            self.wfile.flush()
            time.sleep(piece / rate)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
