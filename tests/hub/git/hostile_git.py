#!/usr/bin/python3
"""Git's protocol as an attacker speaks it, against a running node (called by hostile_git.sh):
malformed Basic credentials, want floods, tree bombs, pushes whose every command is refused,
existence oracles through pushed trees, denied commits inside a pushed history, a tag over a
commit staged for review, many ref updates in one push, duplicate and '.GIT' tree entries, an
LFS download URL after the repo turned private. Objects and packs are built here byte by byte,
so nothing depends on what git's porcelain would refuse to send.

Usage: hostile_git.py URL WRITE_TOKEN OTHER_WRITE_TOKEN STATE_FILE PHASE
  PHASE: "refused" (only the push whose every command is refused, so the shell can show the
  store unchanged around it) or "main" (everything else)
  STATE_FILE: key=value lines the shell wrote (repo heads, the vault blob id...); prints
  "CHECK name|expected|actual" lines for the shell to count."""
import base64
import hashlib
import json
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

URL, TW, TB, STATE, PHASE = sys.argv[1:6]
state = dict(line.strip().split("=", 1) for line in open(STATE) if "=" in line)


def check(name, expected, actual):
    print(f"CHECK {name}|{expected}|{actual}", flush=True)


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


def request(path, body=None, headers=None, method=None, token=None, basic=None, timeout=120):
    req = urllib.request.Request(URL + path, data=body, method=method or ("POST" if body is not None else "GET"))
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"git:{token}".encode()).decode())
    if basic is not None:
        req.add_header("Authorization", "Basic " + basic)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
    except OSError as e:
        return 0, str(e).encode(), {}


def healthy():
    return request("/health")[0] == 200


def obj_id(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


def tree(entries):
    """entries: (mode str, name bytes, hex oid), written in the order given (no sorting)."""
    return b"".join(m.encode() + b" " + n + b"\0" + bytes.fromhex(o) for m, n, o in entries)


def commit(tree_id, parents, msg="x"):
    body = f"tree {tree_id}\n" + "".join(f"parent {p}\n" for p in parents)
    body += f"author a <a@b> 1700000000 +0000\ncommitter a <a@b> 1700000000 +0000\n\n{msg}\n"
    return body.encode()


TYPES = {"commit": 1, "tree": 2, "blob": 3}


def pack(objects):
    """objects: (kind, body) whole objects."""
    out = b"PACK" + struct.pack(">II", 2, len(objects))
    for kind, body in objects:
        size = len(body)
        b = (TYPES[kind] << 4) | (size & 0x0F)
        size >>= 4
        head = b""
        while size:
            head += bytes([b | 0x80])
            b = size & 0x7F
            size >>= 7
        head += bytes([b])
        out += head + zlib.compress(body)
    return out + hashlib.sha1(out).digest()


def push(repo, updates, pack_bytes, token):
    """updates: (old, new, ref). Returns (status, report lines)."""
    body = b""
    for i, (old, new, ref) in enumerate(updates):
        line = f"{old} {new} {ref}".encode()
        if i == 0:
            line += b"\0report-status agent=hostile"
        body += pkt(line + b"\n")
    body += b"0000" + pack_bytes
    status, data, _ = request(f"/{repo}.git/git-receive-pack", body,
                              {"Content-Type": "application/x-git-receive-pack-request"}, token=token)
    lines, i = [], 0
    while i + 4 <= len(data):
        try:
            n = int(data[i:i + 4], 16)
        except ValueError:
            break
        if n < 4:
            i += 4
            continue
        lines.append(data[i + 4:i + n].decode("utf-8", "replace").rstrip("\n"))
        i += n
    return status, lines


def fetch_v2(repo, args, token=None):
    body = pkt(b"command=fetch\n") + pkt(b"object-format=sha1\n") + b"0001" + b"".join(pkt(a) for a in args) + b"0000"
    return request(f"/{repo}.git/git-upload-pack", body,
                   {"Git-Protocol": "version=2", "Content-Type": "application/x-git-upload-pack-request"}, token=token)


Z = "0" * 40
PUB = "alice/pub"
HEAD = state["pub_head"]

if PHASE == "refused":
    # ---- 4. a push whose every command is refused stores nothing ---------------------------------------
    secret = b"bob's unique bytes " + str(time.time()).encode() + b"\n"
    tb = tree([("100644", b"bob.txt", obj_id("blob", secret))])
    cb = commit(obj_id("tree", tb), [HEAD], "bob")
    status, lines = push(PUB, [(HEAD, obj_id("commit", cb), "refs/heads/main")],
                         pack([("blob", secret), ("tree", tb), ("commit", cb)]), TB)
    check("another namespace's push to main: refused", True, any(l.startswith("ng refs/heads/main") for l in lines))
    print(f"STATE bob_blob={obj_id('blob', secret)}")

    sys.exit(0)

# ---- 1. malformed Basic credentials -----------------------------------------------------------
for name, value in [("padding only", "========"), ("four '='", "===="), ("'=' inside", "YT=6Yg=="),
                    ("not base64", "%%%%"), ("no colon", base64.b64encode(b"justtoken").decode()),
                    ("empty password", base64.b64encode(b"git:").decode()), ("huge", "QUFB" * 5000)]:
    status = request("/api/models", basic=value)[0]
    check(f"Basic {name}: refused with a 4xx", True, 400 <= status < 500)
check("the node is alive after malformed credentials", True, healthy())

# ---- 2. want floods -------------------------------------------------------------------------------
old_blob = state["pub_old_blob"]  # a blob of the repo's first commit: a non-tip want
t0 = time.time()
status, data, _ = fetch_v2(PUB, [f"want {old_blob}\n".encode()] * 100000 + [b"done\n"])
check("100,000 copies of one old want: answered (a pack)", True, status == 200 and b"packfile" in data)
many = [f"want {hashlib.sha1(str(i).encode()).hexdigest()}\n".encode() for i in range(10001)]
status, data, _ = fetch_v2(PUB, many + [b"done\n"])
check("10,001 distinct wants: refused with an ERR line", True, b"ERR" in data and b"too many wants" in data)
status, data, _ = fetch_v2(PUB, [f"want {state['vault_blob']}\n".encode(), b"done\n"])
check("want of another repo's private blob: ERR not our ref", True, b"ERR not our ref" in data)
status, data, _ = fetch_v2(PUB, [f"want {hashlib.sha1(b'nothing').hexdigest()}\n".encode(), b"done\n"])
check("...the same ERR for an object that does not exist", True, b"ERR not our ref" in data)
check("the node is alive after want floods", True, healthy())

# ---- 3. a tree bomb: 40 levels, each naming the one below twice ------------------------------------
objs = []
blob = b"leaf\n"
objs.append(("blob", blob))
below = obj_id("blob", blob)
below_mode = "100644"
for level in range(40):
    t = tree([(below_mode, b"a", below), (below_mode, b"b", below)])
    objs.append(("tree", t))
    below, below_mode = obj_id("tree", t), "40000"
c = commit(below, [HEAD], "bomb")
objs.append(("commit", c))
status, lines = push(PUB, [(HEAD, obj_id("commit", c), "refs/heads/main")], pack(objs), TW)
check("a 40-level tree bomb (2^40 paths in 4 KB): refused", True, any(l.startswith("ng refs/heads/main") for l in lines))
check("...naming the limit it hit", True, any("too many files" in l or "deeper than" in l for l in lines))
check("the node is alive after the tree bomb", True, healthy())

# ---- 5. no existence oracle through a pushed tree --------------------------------------------------
answers = []
for target in (state["vault_blob"], hashlib.sha1(b"absent").hexdigest()):
    t = tree([("40000", b"x", target)])
    cm = commit(obj_id("tree", t), [HEAD], "probe")
    status, lines = push(PUB, [(HEAD, obj_id("commit", cm), "refs/heads/main")],
                         pack([("tree", t), ("commit", cm)]), TW)
    answers.append([l.replace(target, "<oid>") for l in lines])
check("a tree naming another repo's private blob: refused", True, any(l.startswith("ng ") for l in answers[0]))
check("...with the very answer a missing object gets", answers[1], answers[0])

# ---- 6. a denied commit inside a pushed history ----------------------------------------------------
card_bad = b"---\nlicense: cc-by-nc-4.0\n---\n# no\n"
card_ok = b"---\nlicense: apache-2.0\n---\n# ok again\n"
pub_tree = json.loads(state["pub_tree"])  # [(mode, name, oid)] of main's root tree
def with_readme(card):
    entries = [(m, n.encode(), o) for m, n, o in pub_tree if n != "README.md"]
    entries.append(("100644", b"README.md", obj_id("blob", card)))
    entries.sort(key=lambda e: e[1] + (b"/" if e[0] == "40000" else b""))
    return tree(entries)
t_bad, t_ok = with_readme(card_bad), with_readme(card_ok)
c_bad = commit(obj_id("tree", t_bad), [HEAD], "denied license")
c_ok = commit(obj_id("tree", t_ok), [obj_id("commit", c_bad)], "back to the good card")
status, lines = push(PUB, [(HEAD, obj_id("commit", c_ok), "refs/heads/main")],
                     pack([("blob", card_bad), ("tree", t_bad), ("commit", c_bad), ("blob", card_ok), ("tree", t_ok),
                           ("commit", c_ok)]), TW)
check("a history with a denied commit under an allowed head: refused", True,
      any(l.startswith("ng refs/heads/main") and "refused by policy" in l for l in lines))

# ---- 7. a tag over a commit staged for review -------------------------------------------------------
staged = state["pol_staged"]
t_tag = tree([("100644", b"tagged.txt", obj_id("blob", b"t\n"))])
c_tag = commit(obj_id("tree", t_tag), [staged], "on top of the staged commit")
status, lines = push("alice/pol", [(Z, obj_id("commit", c_tag), "refs/tags/leak")],
                     pack([("blob", b"t\n"), ("tree", t_tag), ("commit", c_tag)]), TW)
check("a tag whose history holds a commit staged for review: refused", True,
      any(l.startswith("ng refs/tags/leak") for l in lines))
status, data, _ = fetch_v2("alice/pol", [f"want {staged}\n".encode(), b"done\n"])
check("...the staged commit is still out of anonymous reach", True, b"ERR not our ref" in data)

# ---- 8. many ref updates in one push (commands over many reads) -------------------------------------
updates = [(Z, HEAD, f"refs/tags/many-{i:03d}-{'x' * 60}") for i in range(120)]
status, lines = push(PUB, updates, b"", TW)
check("120 tag updates in one push (about 16 KB of commands)", 120, sum(1 for l in lines if l.startswith("ok refs/tags/many-")))

# ---- 9. duplicate names and '.GIT' in pushed trees ---------------------------------------------------
b1 = b"one\n"
inner = tree([("100644", b"x", obj_id("blob", b1))])
dup = tree([("100644", b"a", obj_id("blob", b1)), ("100644", b"a-b", obj_id("blob", b1)), ("40000", b"a", obj_id("tree", inner))])
c_dup = commit(obj_id("tree", dup), [HEAD], "dup")
status, lines = push(PUB, [(HEAD, obj_id("commit", c_dup), "refs/heads/main")],
                     pack([("blob", b1), ("tree", inner), ("tree", dup), ("commit", c_dup)]), TW)
check("a tree naming 'a' as a file and as a folder: refused", True, any(l.startswith("ng ") or l.startswith("unpack ") and l != "unpack ok" for l in lines))
gitdir = tree([("40000", b".GIT", obj_id("tree", inner))])
c_git = commit(obj_id("tree", gitdir), [HEAD], "dotgit")
status, lines = push(PUB, [(HEAD, obj_id("commit", c_git), "refs/heads/main")],
                     pack([("blob", b1), ("tree", inner), ("tree", gitdir), ("commit", c_git)]), TW)
check("a tree holding '.GIT': refused", True, any(l.startswith("ng ") or (l.startswith("unpack ") and l != "unpack ok") for l in lines))
check("main did not move through all of this", HEAD,
      json.loads(request("/api/models/alice/pub/revision/main", token=TW)[1])["sha"])
check("the node is alive at the end", True, healthy())
