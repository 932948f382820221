#!/usr/bin/env python3
"""An HTTP proxy in front of an S3 server that kills a process the moment a pack is stored.

Usage: crash_proxy.py UPSTREAM_URL PORT_FILE PID_FILE

Forwards every request to UPSTREAM_URL unchanged (method, path, query, headers, body: SigV4
signatures stay valid, since the Host header is passed through). When the upstream answers 200 to
the request that makes a pack whole (a PUT of `.../packs/NAME.pack` without `uploadId`, or the
POST that completes its multipart upload), it SIGKILLs the process whose pid is in PID_FILE before
answering: the pack is in the bucket and its writer never learns it, as a power cut there would
leave it. Writes the port it listens on (127.0.0.1) to PORT_FILE. Kills at most once.
"""
import http.client
import http.server
import os
import signal
import sys
import threading
import time
import urllib.parse

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
PORT_FILE, PID_FILE = sys.argv[2], sys.argv[3]
HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te", "upgrade"}
killed = threading.Event()


def makes_a_pack_whole(method, target):
    path, _, query = target.partition("?")
    if "/packs/" not in path or not path.endswith(".pack"):
        return False
    if method == "PUT":
        return "uploadId=" not in query
    return method == "POST" and "uploadId=" in query


def kill_victim():
    for _ in range(100):  # the pid file is written just after the process starts
        try:
            pid = int(open(PID_FILE).read().strip())
            os.kill(pid, signal.SIGKILL)
            return
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
        except ProcessLookupError:
            return


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue answered for curl

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP:
                conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status == 200 and not killed.is_set() and makes_a_pack_whole(self.command, self.path):
            killed.set()
            kill_victim()
        self.send_response(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP and (name.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
