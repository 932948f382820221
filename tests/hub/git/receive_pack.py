#!/usr/bin/python3
"""A raw git push over smart HTTP, for tests that need one git would never send: POSTs one
ref update command and a pack file given as is to {REPO_URL}/git-receive-pack (protocol v0,
report-status, no side-band) and prints the HTTP status, then every line the server
reported (report-status lines such as "unpack ok", "ok REF", "ng REF reason").

Usage: receive_pack.py REPO_URL OLD NEW REF PACK [TOKEN]
  REPO_URL e.g. http://127.0.0.1:PORT/ns/name.git; PACK a file from `git pack-objects --stdout`
  (or /dev/null for none); TOKEN is sent as the Basic password."""
import base64
import sys
import urllib.error
import urllib.request


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


def lines(body: bytes):
    """pkt-line payloads of body; side-band data (band 1) is unwrapped, bands 2/3 printed."""
    out, i = [], 0
    while i + 4 <= len(body):
        try:
            n = int(body[i:i + 4], 16)
        except ValueError:
            out.append(body[i:].decode("utf-8", "replace").strip())
            break
        if n == 0:
            i += 4
            continue
        payload = body[i + 4:i + n]
        i += n
        if payload[:1] == b"\x01":
            out += lines(payload[1:])
        elif payload[:1] in (b"\x02", b"\x03"):
            out.append("remote: " + payload[1:].decode("utf-8", "replace").strip())
        else:
            out.append(payload.decode("utf-8", "replace").rstrip("\n"))
    return out


def main():
    url, old, new, ref, pack = sys.argv[1:6]
    token = sys.argv[6] if len(sys.argv) > 6 else ""
    body = pkt(f"{old} {new} {ref}\0report-status agent=git/hubnode-test\n".encode()) + b"0000"
    with open(pack, "rb") as f:
        body += f.read()
    req = urllib.request.Request(url.rstrip("/") + "/git-receive-pack", data=body, method="POST")
    req.add_header("Content-Type", "application/x-git-receive-pack-request")
    req.add_header("Accept", "application/x-git-receive-pack-result")
    if token:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"git:{token}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    except OSError as e:
        status, data = 0, str(e).encode()
    print(status)
    for line in lines(data):
        print(line)


if __name__ == "__main__":
    main()
