#!/usr/bin/python3
"""Compares hubnode's logits trace with the NumPy reference's.

Usage: compare_logits.py REFERENCE.json HUBNODE.json [--tol 1e-4]
Each row's error is max|a - b| / max|b| (b = reference). Fails (exit 1) when any row exceeds the
tolerance or the greedy token sequences differ; prints the worst rows either way.
"""
import json
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    tol = 1e-4
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i:i + 2]
    ref = json.load(open(args[0]))
    got = json.load(open(args[1]))
    rows_ref = ref["prefill_logits"] + [d["logits"] for d in ref["decode"]]
    rows_got = got["prefill_logits"] + [d["logits"] for d in got["decode"]]
    if len(rows_ref) != len(rows_got):
        print(f"row count differs: reference {len(rows_ref)}, hubnode {len(rows_got)}")
        return 1
    worst = 0.0
    for i, (a, b) in enumerate(zip(rows_got, rows_ref)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or not np.all(np.isfinite(a)):
            print(f"row {i}: shape {a.shape} vs {b.shape} or non-finite values")
            return 1
        err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
        worst = max(worst, err)
        if err > tol:
            print(f"row {i}: relative error {err:.3g} > {tol}")
            return 1
    tref = [d["token"] for d in ref["decode"]]
    tgot = [d["token"] for d in got["decode"]]
    if tref != tgot:
        print(f"greedy tokens differ:\n  reference {tref}\n  hubnode   {tgot}")
        return 1
    print(f"ok: {len(rows_ref)} rows, worst relative error {worst:.2e}, {len(tref)} greedy tokens identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
