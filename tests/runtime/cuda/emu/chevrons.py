#!/usr/bin/env python3
"""Rewrites CUDA's kernel launches for the emulator (cuda_runtime.h here): each
`kernel<<<grid, block, smem, stream>>>(args)` becomes `::emu::Launch(kernel, grid, block, smem,
stream)(args)`. Fails when a launch is left (a form this does not know).
Usage: chevrons.py IN.cu OUT.cc"""
import re
import sys

src = open(sys.argv[1], encoding="utf-8").read()
out, n = re.subn(r"([A-Za-z_]\w*(?:<[^<>;()]*>)?)<<<(.*?)>>>\(", r"::emu::Launch(\1, \2)(", src, flags=re.S)
if "<<<" in out or n == 0:
    sys.exit(f"chevrons.py: {sys.argv[1]}: a launch was not rewritten ({n} were)")
open(sys.argv[2], "w", encoding="utf-8").write(f"// Generated from {sys.argv[1]} by chevrons.py: {n} launches.\n" + out)
