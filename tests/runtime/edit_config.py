#!/usr/bin/env python3
"""Merges a JSON object into a model's config.json (the logits tests' config variants).
Usage: edit_config.py CONFIG.json '{"key": value, ...}'"""
import json
import sys

path, edit = sys.argv[1], json.loads(sys.argv[2])
with open(path, encoding="utf-8") as f:
    cfg = json.load(f)
cfg.update(edit)
with open(path, "w", encoding="utf-8") as f:
    json.dump(cfg, f, indent=2, sort_keys=True)
