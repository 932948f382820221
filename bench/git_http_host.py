#!/usr/bin/python3
"""git's own smart HTTP server for bench/git_bench.sh: a small CGI host on 127.0.0.1 that runs
`git http-backend` once per request (as Apache or nginx + fcgiwrap would), streaming the request
body in and the answer out (chunked, keep-alive).

Usage: git_http_host.py PROJECT_ROOT
Prints "serving http://127.0.0.1:PORT" once listening (port chosen by the kernel). Repositories
are served read-only (upload-pack) at /{path under PROJECT_ROOT}.

Memory: GET /__rusage answers JSON with
  children_maxrss_kb  the largest peak RSS of any git process this host ran and reaped
                      (getrusage(RUSAGE_CHILDREN).ru_maxrss: http-backend, upload-pack and
                      pack-objects, each counted alone);
  sampled_sum_peak_kb the largest sum of the RSS of every live descendant, sampled every 10 ms
                      (what the processes of one request hold at once);
  host_hwm_kb         this Python host's own peak RSS (VmHWM).
"""
import http.server
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.realpath(sys.argv[1])
GIT = "/usr/bin/git"
_sum_peak_kb = 0
_active = 0                      # requests running a git process now; the sampler runs only then
_active_lock = threading.Lock()
_busy = threading.Event()


def _descendants_rss_kb():
    """Sum of VmRSS over every live descendant of this process (from /proc)."""
    me = os.getpid()
    parent, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/status") as f:
                kb = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        except (OSError, ValueError, StopIteration):
            continue
        parent[int(d)], rss[int(d)] = ppid, kb
    total = 0
    for pid in parent:
        p, seen = pid, 0
        while p in parent and seen < 64:
            p, seen = parent[p], seen + 1
            if p == me:
                total += rss[pid]
                break
    return total


def _sampler():
    global _sum_peak_kb
    while True:
        _busy.wait()
        _sum_peak_kb = max(_sum_peak_kb, _descendants_rss_kb())
        time.sleep(0.01)


def _enter(delta):
    global _active
    with _active_lock:
        _active += delta
        (_busy.set if _active else _busy.clear)()


def _hwm_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cgi(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__rusage":
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            body = json.dumps({"children_maxrss_kb": ru.ru_maxrss, "sampled_sum_peak_kb": _sum_peak_kb,
                               "host_hwm_kb": _hwm_kb()}).encode()
            return self._reply(200, body, "application/json")
        body = self._body()
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": ROOT,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": "git_http_host",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(url.path),
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        _enter(1)
        try:
            self._run(env, body)
        finally:
            _enter(-1)

    def _run(self, env, body):
        proc = subprocess.Popen([GIT, "http-backend"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

        def feed():
            try:
                proc.stdin.write(body)
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()
        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        status, headers = 200, []
        while True:
            line = proc.stdout.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            data = proc.stdout.read1(1 << 16)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")
        writer.join()
        proc.wait()

    do_GET = _cgi
    do_POST = _cgi


if __name__ == "__main__":
    threading.Thread(target=_sampler, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"serving http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
