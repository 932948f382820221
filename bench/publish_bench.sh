#!/usr/bin/env bash
# What staging and discussions cost (issue 14), against a real `hubnode serve` on 127.0.0.1:
# - a writer's read of a staged branch (repo info and a file download, which resolve
#   refs/held/<branch> first) against an anonymous read of the released head, same requests;
# - listing, reading and commenting on a discussion with 0 and N others on the repo, against
#   repo info (the baseline: one small JSON answer) in the same run;
# - a three-way merge of a pull request against a fast-forward one.
# Prints a table of medians (ms) and ratios. Usage: bench/publish_bench.sh HUBNODE [N]
set -euo pipefail
HUBNODE=$(realpath "$1")
N=${2:-2000}
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
TW=$(hub token create --name alice --scope write --namespace alice)
TB=$(hub token create --name bob --scope write --namespace bob)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> /dev/null &
PID=$!
for _ in $(seq 200); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")

/usr/bin/python3 - "$U" "$TW" "$TB" "$N" <<'PY'
import base64, json, statistics, sys, time, urllib.request
U, TW, TB, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def req(method, path, body=None, token=None, ctype="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    r = urllib.request.Request(U + path, data=data, method=method)
    if token: r.add_header("Authorization", "Bearer " + token)
    if data is not None: r.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(r) as resp: return resp.status, resp.read()
    except urllib.error.HTTPError as e: return e.code, e.read()

def commit(repo, files, token=TW, rev="main", pr=False):
    lines = [{"key": "header", "value": {"summary": "c"}}]
    for p, t in files.items():
        lines.append({"key": "file", "value": {"path": p, "content": base64.b64encode(t.encode()).decode(), "encoding": "base64"}})
    body = "\n".join(json.dumps(l) for l in lines).encode()
    st, out = req("POST", f"/api/models/{repo}/commit/{rev}" + ("?create_pr=1" if pr else ""), body, token, "application/x-ndjson")
    assert st == 200, (st, out)
    return json.loads(out)

def median_ms(fn, n=200):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)

rows = []
req("POST", "/api/repos/create", {"name": "m", "organization": "alice"}, TW)
commit("alice/m", {"README.md": "---\nlicense: apache-2.0\n---\n", "a.txt": "released\n"})
commit("alice/m", {"README.md": "# no license now\n", "b.txt": "staged\n"})   # staged
base = median_ms(lambda: req("GET", "/api/models/alice/m"))
rows.append(("repo info, anonymous (released head) — baseline", base, 1.0))
w = median_ms(lambda: req("GET", "/api/models/alice/m", token=TW))
rows.append(("repo info, the writer (staged head)", w, w / base))
dl_a = median_ms(lambda: req("GET", "/alice/m/resolve/main/a.txt"))
dl_w = median_ms(lambda: req("GET", "/alice/m/resolve/main/b.txt", token=TW))
rows.append(("download, anonymous (released)", dl_a, dl_a / base))
rows.append(("download, the writer (staged)", dl_w, dl_w / base))

req("POST", "/api/repos/create", {"name": "d", "organization": "alice"}, TW)
commit("alice/d", {"README.md": "---\nlicense: apache-2.0\n---\n"})
st, out = req("POST", "/api/models/alice/d/discussions", {"title": "first", "description": "hello"}, TW)
first = json.loads(out)["num"]
l0 = median_ms(lambda: req("GET", "/api/models/alice/d/discussions"))
d0 = median_ms(lambda: req("GET", f"/api/models/alice/d/discussions/{first}"))
c0 = median_ms(lambda: req("POST", f"/api/models/alice/d/discussions/{first}/comment", {"comment": "x"}, TB), 50)
t = time.perf_counter()
for i in range(N - 1):
    req("POST", "/api/models/alice/d/discussions", {"title": f"d{i}", "description": "y" * 200}, TW)
open_each = (time.perf_counter() - t) * 1000 / max(N - 1, 1)
lN = median_ms(lambda: req("GET", "/api/models/alice/d/discussions"), 50)
dN = median_ms(lambda: req("GET", f"/api/models/alice/d/discussions/{first}"))
cN = median_ms(lambda: req("POST", f"/api/models/alice/d/discussions/{first}/comment", {"comment": "x"}, TB), 50)
rows += [("list discussions, 1 on the repo", l0, l0 / base), (f"list discussions (page of 50), {N} on the repo", lN, lN / base),
         ("discussion details, 1 on the repo", d0, d0 / base), (f"discussion details, {N} on the repo", dN, dN / base),
         ("comment, 1 on the repo", c0, c0 / base), (f"comment, {N} on the repo", cN, cN / base),
         (f"open a discussion (mean of {N - 1}, the repo filling up)", open_each, open_each / base)]

# Merges: fast-forward vs three-way, each with 200 files on the branch.
req("POST", "/api/repos/create", {"name": "g", "organization": "alice"}, TW)
files = {"README.md": "---\nlicense: apache-2.0\n---\n"}
files.update({f"f/{i}.txt": f"{i}\n" for i in range(200)})
commit("alice/g", files)
def merge(three_way):
    pr = commit("alice/g", {"pr.txt": str(time.time())}, pr=True)["pullRequestUrl"].rsplit("/", 1)[1]
    if three_way: commit("alice/g", {"main.txt": str(time.time())})
    t = time.perf_counter()
    st, out = req("POST", f"/api/models/alice/g/discussions/{pr}/merge", {}, TW)
    assert st == 200, out
    return (time.perf_counter() - t) * 1000
ff = statistics.median(merge(False) for _ in range(20))
tw = statistics.median(merge(True) for _ in range(20))
rows += [("merge, fast-forward (200 files)", ff, ff / base), ("merge, three-way with a merge commit (200 files)", tw, tw / base)]

print("| operation | median ms | × baseline |")
print("|---|---:|---:|")
for name, ms, ratio in rows:
    print(f"| {name} | {ms:.2f} | {ratio:.1f} |")
PY
