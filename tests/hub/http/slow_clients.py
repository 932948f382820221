#!/usr/bin/python3
"""Slow and idle clients cannot take the node down (issue 13, item 11).

Against a running `hubnode serve` at URL (started with --header-timeout 3 --idle-timeout 3): the
attackers connect from 127.0.0.2 (a loopback address of their own), the victim from 127.0.0.1.
Phases, each checked and timed:
  baseline  - /health and a small download, nothing else open
  attack    - 100 connections sending their request head one byte a second, 100 idle sockets and
              40 downloads of a large file whose readers never read: /health and the small
              download must each answer within 1 s, every time
  burst     - 150 requests at once from the victim: every one answered (no resets)
  flood     - 1,500 more idle sockets from the attacker: refused beyond the per-address cap
              (503), the victim unaffected
  deadlines - a head still incomplete after the header timeout gets 408 and is closed; an idle
              kept-alive connection is closed after the idle timeout; a head over 64 KiB gets 431
Prints one line per check ("ok ..." or "FAIL ...") and a table of latencies; exits 1 on a failure.
Usage: slow_clients.py URL BIG_PATH SMALL_PATH
"""
import socket, sys, threading, time, urllib.parse, urllib.request
from concurrent.futures import ThreadPoolExecutor

URL, BIG, SMALL = sys.argv[1], sys.argv[2], sys.argv[3]
u = urllib.parse.urlparse(URL)
HOST, PORT = u.hostname, u.port
failures = []
rows = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f" ({detail})" if detail else ""))
    if not ok:
        failures.append(name)


def connect(src="127.0.0.2", rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.settimeout(10)
    s.connect((HOST, PORT))
    return s


def status_of(s):
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionError):
        return None
    parts = data.split(b"\r\n")[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 else None


def timed_get(path):
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(URL + path, timeout=10) as r:
            r.read()
            code = r.status
    except Exception as e:
        code = getattr(e, "code", None)
    return code, time.monotonic() - t0


def probe(label, n=20):
    lat = {"health": [], "small": []}
    codes = set()
    for _ in range(n):
        for key, path in (("health", "/health"), ("small", SMALL)):
            code, dt = timed_get(path)
            codes.add(code)
            lat[key].append(dt)
        time.sleep(0.05)
    for key in lat:
        v = sorted(lat[key])
        rows.append((label, key, len(v), v[len(v) // 2] * 1000, v[-1] * 1000, sum(x < 1 for x in v)))
    return codes, lat


codes, _ = probe("baseline")
check("baseline: every probe answered 200", codes == {200}, str(codes))

# ---- attack ----------------------------------------------------------------------------------
stop = threading.Event()
slow = []
for _ in range(100):
    s = connect()
    s.sendall(b"G")
    slow.append(s)
idle = [connect() for _ in range(100)]
readers = []
for _ in range(40):
    s = connect(rcvbuf=4096)
    s.sendall(f"GET {BIG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    readers.append(s)  # never read


def drip():
    head = b"ET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    i = 0
    while not stop.is_set() and i < len(head):
        for s in slow:
            try:
                s.sendall(head[i:i + 1])
            except OSError:
                pass
        i += 1
        stop.wait(1.0)


dripper = threading.Thread(target=drip)
dripper.start()
time.sleep(1.0)
codes, lat = probe("attack: 100 slow heads, 100 idle, 40 stalled downloads")
check("attack: every probe answered 200", codes == {200}, str(codes))
check("attack: /health always within 1 s", max(lat["health"]) < 1.0, f"max {max(lat['health']) * 1000:.0f} ms")
check("attack: a small download always within 1 s", max(lat["small"]) < 1.0, f"max {max(lat['small']) * 1000:.0f} ms")

# ---- burst -----------------------------------------------------------------------------------
with ThreadPoolExecutor(150) as pool:
    results = list(pool.map(lambda _: timed_get("/health"), range(150)))
answered = sum(code == 200 for code, _ in results)
worst = max(dt for _, dt in results)
rows.append(("burst of 150 during the attack", "health", 150, sorted(dt for _, dt in results)[75] * 1000, worst * 1000,
             sum(dt < 1 for _, dt in results)))
check("burst: 150 requests at once, all answered", answered == 150, f"{answered} answered")

# ---- flood -----------------------------------------------------------------------------------
flood, refused = [], 0
for _ in range(1500):
    try:
        s = connect()
        flood.append(s)
    except OSError:
        refused += 1
time.sleep(0.5)
statuses = []
for s in flood:
    s.settimeout(0.01)
    try:
        data = s.recv(64)
        statuses.append(data.split(b" ")[1] if data.startswith(b"HTTP/1.1 ") else b"closed")
    except socket.timeout:
        statuses.append(b"open")
    except OSError:
        statuses.append(b"closed")
n503 = statuses.count(b"503")
check("flood: connections over the per-address cap refused with 503", n503 >= 1500 - 256, f"{n503} refused")
codes, lat = probe("flood: 1,500 more idle sockets", 10)
check("flood: the victim still served within 1 s", codes == {200} and max(lat["health"]) < 1.0,
      f"max {max(lat['health']) * 1000:.0f} ms")
for s in flood:
    s.close()
stop.set()
dripper.join()
for s in slow + idle + readers:
    s.close()

# ---- deadlines -------------------------------------------------------------------------------
s = connect("127.0.0.1")
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
t0 = time.monotonic()
code = status_of(s)
check("an unfinished head gets 408 after the header timeout", code == 408 and 2.0 < time.monotonic() - t0 < 6,
      f"{code} after {time.monotonic() - t0:.1f} s")
s = connect("127.0.0.1")
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
first = status_of(s)
s.settimeout(8)
t0 = time.monotonic()
try:
    rest = s.recv(4096)
    while rest:
        rest = s.recv(4096)
    closed_after = time.monotonic() - t0
except socket.timeout:
    closed_after = None
check("an idle kept-alive connection is closed after the idle timeout",
      first == 200 and closed_after is not None and closed_after < 6, f"after {closed_after}")
s = connect("127.0.0.1")
try:
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
except OSError:
    pass
check("a head over 64 KiB gets 431", status_of(s) == 431)

print()
print("| phase | request | n | median ms | max ms | within 1 s |")
print("|---|---|---|---|---|---|")
for label, key, n, med, mx, ok in rows:
    print(f"| {label} | {key} | {n} | {med:.1f} | {mx:.1f} | {ok}/{n} |")
print(f"\n{len(failures)} failed")
sys.exit(1 if failures else 0)
