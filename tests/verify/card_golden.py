#!/usr/bin/python3
"""The node's model-card reading against huggingface_hub's own (issue 13, item 8).

Generates README variants (leading whitespace, newline styles, closing lines that are and are not
exactly `---`, `---` inside values, duplicate keys, nested values) and checks that
`hubnode license card` finds the same YAML block as huggingface_hub's REGEX_YAML_BLOCK (the comment
there says it is the Hub server's own regex) and, for cards without duplicate keys, the same data
as PyYAML's safe_load, which huggingface_hub uses. The regex is read from the real client in
shared/clients when present, else the copy below.
Usage: card_golden.py HUBNODE [CLIENTS_DIR]
"""
import json, os, random, re, subprocess, sys, tempfile

import yaml

HUBNODE = sys.argv[1]
REGEX = r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))"
clients = sys.argv[2] if len(sys.argv) > 2 else ""
for version in ("huggingface_hub-1.3.7", "huggingface_hub-0.35.3"):
    path = os.path.join(clients, version, "huggingface_hub", "repocard.py")
    if clients and os.path.exists(path):
        m = re.search(r'REGEX_YAML_BLOCK = re\.compile\(r"(.*)"\)', open(path).read())
        if m:
            REGEX = m.group(1)
            print("regex from", path)
            break
BLOCK = re.compile(REGEX)

rng = random.Random(13)
NL = ["\n", "\r\n", "\n\n"]
CLOSERS = ["---", "--- ", "---x: 1", "----", "---\t", " ---"]


def value(depth=0):
    kind = rng.randrange(6 if depth < 2 else 3)
    if kind == 0:
        return rng.choice(["apache-2.0", "mit", "cc-by-nc-4.0", "other", "a/b", "text with spaces"])
    if kind == 1:
        return rng.randrange(-5, 1000)
    if kind == 2:
        return rng.choice(["'quoted: yes'", '"--- inside"', "'3'"])
    if kind == 3:
        return [value(depth + 1) for _ in range(rng.randrange(1, 4))]
    if kind == 4:
        return {f"k{i}": value(depth + 1) for i in range(rng.randrange(1, 3))}
    return rng.choice(["true", "false", "null", "1.5"])


def dump(v, indent=""):
    if isinstance(v, dict):
        return "".join(f"\n{indent}  {k}: {dump(x, indent + '  ')}" for k, x in v.items())
    if isinstance(v, list):
        return "[" + ", ".join(json.dumps(x) if isinstance(x, (dict, list)) else str(x) for x in v) + "]"
    return str(v)


def card():
    nl = rng.choice(NL)
    lead = rng.choice(["", "", " ", "\n", "\n \n"])
    keys = [f"key{i}" for i in range(rng.randrange(0, 5))] + rng.sample(["license", "base_model", "tags"], 2)
    if rng.random() < 0.2:
        keys.append(keys[0])  # a duplicate
    body = nl.join(f"{k}: {dump(value())}" for k in keys)
    text = lead + "---" + nl + body
    for _ in range(rng.randrange(0, 2)):
        text += nl + rng.choice(CLOSERS[1:]) + nl + "more: 1"
    closer = rng.choice(CLOSERS + ["---", "---"])
    tail = rng.choice(["", nl + "# Model" + nl, nl])
    return text + nl + closer + tail, len(set(keys)) != len(keys)


checked = same_block = same_data = compared = 0
failures = []
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "README.md")
    for i in range(400):
        text, duplicate = card()
        with open(path, "w", newline="") as f:
            f.write(text)
        out = json.loads(subprocess.run([HUBNODE, "license", "card", path], capture_output=True, check=True).stdout)
        m = BLOCK.search(text)
        checked += 1
        want = (m.start(2), m.end(2)) if m else None
        got = (out["yaml"]["begin"], out["yaml"]["end"]) if out["present"] else None
        # The node counts bytes, Python characters: the cards are ASCII.
        if want == got:
            same_block += 1
        else:
            failures.append(f"block {i}: hub {want}, node {got}: {text!r}")
            continue
        if not m or duplicate:
            continue
        try:
            hub = yaml.safe_load(m.group(2))
        except yaml.YAMLError:
            hub = "invalid"
        node = out["data"] if out["data"] is not None else "invalid"
        if hub is None:
            hub = {}
        if not isinstance(hub, dict):
            hub = "invalid"
        compared += 1
        if json.dumps(hub, sort_keys=True, default=str) == json.dumps(node, sort_keys=True):
            same_data += 1
        else:
            failures.append(f"data {i}: hub {hub!r}, node {node!r}: {m.group(2)!r}")
for f in failures[:10]:
    print("FAIL", f)
print(f"{same_block}/{checked} blocks as the Hub's regex finds them, {same_data}/{compared} cards read as PyYAML reads them")
sys.exit(1 if failures else 0)
