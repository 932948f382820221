#!/usr/bin/python3
"""Hostile peers for GET /api/peer/v1/have/{repo}: one server per MODE, each on its own port,
answering by proxying a real hubnode (UPSTREAM) and breaking the answer one way. Every request's
headers are noted in LOG (whether it carried a token, whether it was signed).
Usage: hostile_have_peer.py UPSTREAM PORTS_FILE LOG MODE...; writes "MODE PORT" lines to
PORTS_FILE once all listen.
Modes: garbage (not JSON), deep (nesting bomb), wrongrepo, wrongcommit, wrongcount (a file's chunk
count off by one), bigbitmap (a bitmap far larger than its file's chunks), missingfile (a file
left out), badcounts (the totals disagree with the bitmaps), huge (a 64 MiB body), hang (answers
after 10 s), status500."""
import base64
import http.server
import json
import os
import sys
import threading
import time
import urllib.request

UPSTREAM, PORTS_FILE, LOG = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
MODES = sys.argv[4:]
log_lock = threading.Lock()


def real(path):
    try:
        return json.loads(urllib.request.urlopen(UPSTREAM + path, timeout=5).read())
    except Exception:
        return None


def broken(mode, path):
    if mode == "garbage":
        return b"{this is not json"
    if mode == "deep":
        return b"[" * 100000
    d = real(path)
    if d is None:
        return b"{}"
    lfs = [f for f in d["files"] if f["chunks"] > 0]
    if mode == "wrongrepo":
        d["repo"] = "other/repo"
    elif mode == "wrongcommit":
        d["commit"] = "0" * 40
    elif mode == "wrongcount":
        lfs[-1]["chunks"] += 1
    elif mode == "bigbitmap":
        lfs[-1]["have"] = base64.b64encode(b"\xff" * 100000).decode()
    elif mode == "missingfile":
        d["files"].remove(lfs[-1])
    elif mode == "badcounts":
        d["held"] += 1
    return json.dumps(d).encode()


def handler(mode):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with log_lock, open(LOG, "a") as f:
                f.write("%s %s auth=%s signed=%s\n" % (mode, self.path.split("?")[0],
                        "yes" if self.headers.get("Authorization") else "no",
                        "yes" if self.headers.get("X-Hubnode-Node-Key") else "no"))
            if mode == "status500":
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if mode == "huge":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(64 << 20))
                self.end_headers()
                try:
                    piece = b" " * (1 << 20)
                    for _ in range(64):
                        self.wfile.write(piece)
                except Exception:
                    pass
                return
            if mode == "hang":
                time.sleep(10)
            body = broken(mode, self.path)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except Exception:
                pass

        def log_message(self, *args):
            pass

    return Handler


servers = []
for mode in MODES:
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(mode))
    s.daemon_threads = True
    servers.append((mode, s))
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(PORTS_FILE + ".tmp", "w") as f:
    for mode, s in servers:
        f.write("%s %d\n" % (mode, s.server_address[1]))
os.rename(PORTS_FILE + ".tmp", PORTS_FILE)
while True:
    time.sleep(3600)
