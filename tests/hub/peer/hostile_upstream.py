#!/usr/bin/python3
"""A hostile upstream and peer for tests: an HF-compatible endpoint whose answers attack the
client. Usage: hostile_upstream.py PORT. Every repo `evil/MODE` misbehaves one way:

  deep-json     repo info is 8 MiB of '[' (a DOM would cost gigabytes)
  huge-json     repo info is 40 MiB of valid JSON (over the client's cap)
  many-files    the tree lists 200,000 files
  dotdot        the tree lists ../../escape.txt
  long-path     the tree lists a 2,000-byte path
  laughs        a README that is a billion laughs, with a safetensors file
  st-tensors    a safetensors file whose header declares 1,100,000 tensors
  st-deep       a safetensors file whose header nests 100,000 levels
  st-length     a safetensors file whose header length is 2^60
  lying         a file whose bytes do not match the size and digest listed
  slow          a file sent at 100 bytes/s (the client's low-speed limit ends it)

The peer API (/api/peer/v1/...) answers a catalog of 8 MiB of '{' and chunks of random bytes.
"""
import hashlib, http.server, json, os, struct, sys, time

PORT = int(sys.argv[1])
SHA = "1" * 40


def laughs():
    lines = ["---", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join(f"*a{i-1}" for _ in range(10)) + "]")
    lines += ["license: apache-2.0", "---", "# laughs"]
    return ("\n".join(lines) + "\n").encode()


def safetensors(header_text, data=b""):
    return struct.pack("<Q", len(header_text)) + header_text + data


def st_tensors():
    n = 1_100_000
    parts = [b'"t%d":{"dtype":"U8","shape":[1],"data_offsets":[%d,%d]}' % (i, i, i + 1) for i in range(n)]
    return safetensors(b"{" + b",".join(parts) + b"}", b"\0" * n)


FILES = {
    "laughs": {"README.md": laughs(), "model.safetensors": safetensors(b'{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x")},
    "st-deep": {"model.safetensors": safetensors(b"[" * 100_000 + b"]" * 100_000)},
    "st-length": {"model.safetensors": struct.pack("<Q", 1 << 60) + b"{}"},
    "lying": {"config.json": b'{"a": 1}'},
    "slow": {"config.json": b"x" * 200_000},
}
CACHE = {}


def files_of(mode):
    if mode == "st-tensors":
        if "st" not in CACHE:
            CACHE["st"] = {"model.safetensors": st_tensors()}
        return CACHE["st"]
    return FILES.get(mode, {"config.json": b"{}"})


def entry(path, data):
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    e = {"type": "file", "path": path, "size": len(data), "oid": blob}
    if path.endswith(".safetensors"):
        e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return e


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def do_GET(self):
        p = self.path.split("?")[0]
        if p.startswith("/api/peer/v1/catalog"):
            return self.send(200, b"{" * (8 << 20))
        if p.startswith("/api/peer/v1/chunks/"):
            return self.send(200, os.urandom(4096), "application/octet-stream")
        parts = p.strip("/").split("/")
        if len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
            mode = parts[3]
            rest = parts[4:]
            if rest and rest[0] == "revision":
                if mode == "deep-json":
                    return self.send(200, b"[" * (8 << 20))
                if mode == "huge-json":
                    return self.send(200, json.dumps({"sha": SHA, "pad": "x" * (40 << 20)}).encode())
                return self.send(200, json.dumps({"sha": SHA, "private": False}).encode())
            if rest and rest[0] == "tree":
                if mode == "many-files":
                    out = [{"type": "file", "path": "f%d" % i, "size": 1, "oid": "2" * 40} for i in range(200_000)]
                    return self.send(200, json.dumps(out).encode())
                if mode == "dotdot":
                    return self.send(200, json.dumps([{"type": "file", "path": "../../escape.txt", "size": 1, "oid": "3" * 40}]).encode())
                if mode == "long-path":
                    return self.send(200, json.dumps([{"type": "file", "path": "d/" * 1000 + "x", "size": 1, "oid": "4" * 40}]).encode())
                out = [entry(k, v) for k, v in files_of(mode).items()]
                if mode == "lying":
                    out[0]["size"] += 1
                return self.send(200, json.dumps(out).encode())
            if rest and rest[0] == "commits":
                return self.send(200, json.dumps([{"id": SHA, "title": "evil", "date": "2026-01-01T00:00:00.000Z"}]).encode())
            return self.send(404, b'{"error":"no"}')
        if len(parts) >= 4 and parts[2] == "resolve":
            mode, path = parts[1], "/".join(parts[4:])
            data = files_of(mode).get(path)
            if data is None:
                return self.send(404, b'{"error":"no"}')
            if mode == "slow":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(0, len(data), 10):
                        self.wfile.write(data[i:i + 10])
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass
                return
            return self.send(200, data, "application/octet-stream")
        self.send(404, b'{"error":"no"}')

    def do_HEAD(self):
        self.send(404, b"")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
