#!/usr/bin/env python3
"""The tree states the architecture, and this test keeps it true (issue 12).

Checks, from the sources alone:
- the include graph between the folders of hub/ and of runtime/ has no cycle, and every edge of
  hub/ is one hub/README.md's table declares;
- the module rules of shared/STYLE.md: base, store, verify and runtime never include hub/;
  store, verify and runtime never include each other; the runtime's root reaches cpu/ and cuda/
  only through backend.h;
- third-party headers stay where their library is linked: <httplib.h> only in hub/http/,
  <curl/...> only in hub/client/, hub/peer/ and hub/s3/, <CLI/...> only in hub/cli/, <rocksdb/...> only
  in store/, <yaml-cpp/...> only in verify/ (the one model-card parser), <cuda...>/<cublas...> only in
  runtime/cuda/;
- no folder of hub/ or runtime/ holds more than 16 source files (no other module more than 16
  translation units), and every folder has a README.md.
Usage: layout_test.py SOURCE_DIR
"""
import os
import re
import sys

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = ["base", "store", "verify", "runtime", "hub", "testmodel"]
INCLUDE = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]', re.M)
failures = []


def fail(msg):
    failures.append(msg)


def sources(root):
    for dirpath, dirnames, filenames in os.walk(os.path.join(SRC, root)):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith((".h", ".cc", ".cu", ".cuh")):
                yield os.path.relpath(os.path.join(dirpath, f), SRC)


def includes(path):
    with open(os.path.join(SRC, path), encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def folder(path):
    return os.path.dirname(path)


def cycles(graph):
    """Every cycle's nodes (Tarjan's strongly connected components of size > 1, or self-loops)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


all_files = [p for m in MODULES for p in sources(m)]
graph = {}
checked = 0
for p in all_files:
    here = folder(p)
    module = p.split("/")[0]
    for kind, inc in includes(p):
        checked += 1
        if kind == '"':
            target_module = inc.split("/")[0]
            target_folder = folder(inc)
            if target_folder != here and target_module in ("hub", "runtime") and module == target_module:
                graph.setdefault(here, set()).add(target_folder)
            if module in ("base", "store", "verify", "runtime") and target_module == "hub":
                fail(f"{p} includes {inc}: {module}/ must never include hub/")
            if module in ("store", "verify", "runtime") and target_module in ("store", "verify", "runtime") \
                    and target_module != module:
                fail(f"{p} includes {inc}: store, verify and runtime never include each other")
            if module == "base" and target_module != "base":
                fail(f"{p} includes {inc}: base/ includes only base/")
            if here == "runtime" and inc.startswith(("runtime/cpu/", "runtime/cuda/")):
                fail(f"{p} includes {inc}: the runtime reaches its backends only through backend.h")
        else:
            homes = {"httplib.h": ["hub/http"], "curl/": ["hub/client", "hub/peer", "hub/s3"], "CLI/": ["hub/cli"],
                     "rocksdb/": ["store"], "yaml-cpp/": ["verify"], "cuda": ["runtime/cuda"], "cublas": ["runtime/cuda"]}
            for prefix, allowed in homes.items():
                if inc.startswith(prefix) and here not in allowed:
                    fail(f"{p} includes <{inc}>, which belongs in {' or '.join(allowed)}/ only")

for comp in cycles(graph):
    fail("include cycle between folders: " + " -> ".join(comp))

# Every edge between hub/ folders is one hub/README.md declares.
declared = {}
with open(os.path.join(SRC, "hub/README.md"), encoding="utf-8") as f:
    for line in f:
        m = re.match(r"^\| `(\w+)` \| (.*) \|$", line.strip())
        if m:
            deps = m.group(2).strip()
            declared[m.group(1)] = None if deps == "all of the above" else \
                {d.strip() for d in deps.split(",") if d.strip() not in ("", "—")}
hub_folders = sorted({folder(p) for p in sources("hub") if folder(p) != "hub"})
for f in hub_folders:
    name = f.split("/", 1)[1]
    if name not in declared:
        fail(f"{f}/ is missing from hub/README.md's table")
        continue
    allowed = declared[name]
    for target in sorted(graph.get(f, ())):
        if not target.startswith("hub/") or allowed is None:
            continue
        if target.split("/", 1)[1] not in allowed:
            fail(f"{f}/ includes {target}/, which hub/README.md does not declare")

# Folder sizes and READMEs.
by_folder = {}
for p in all_files:
    by_folder.setdefault(folder(p), []).append(p)
for f, files in sorted(by_folder.items()):
    # hub/ and runtime/ are split into folders by responsibility: at most 16 files each. The other
    # modules are one folder each: at most 16 translation units.
    counted = files if f.split("/")[0] in ("hub", "runtime") else [x for x in files if x.endswith((".cc", ".cu"))]
    if len(counted) > 16:
        fail(f"{f}/ holds {len(counted)} source files (at most 16: split it by responsibility)")
    if not os.path.exists(os.path.join(SRC, f, "README.md")):
        fail(f"{f}/ has no README.md")

print(f"layout: {len(all_files)} files, {checked} includes, {len(by_folder)} folders, "
      f"{sum(len(v) for v in graph.values())} edges between hub/ and runtime/ folders")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
