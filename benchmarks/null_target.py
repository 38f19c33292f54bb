#!/usr/bin/env python3
"""A Singer target that reads every line and loads nothing (``benchmarks/whole_loop.py
--floor``): what a leg costs under ``meltano run`` with a loader that costs nothing.

It ignores its arguments (``--config ...``), keeps the last STATE line, writes it at the end
(as a target does once its data is safe) and exits 0.
"""

import sys

state = b""
for line in sys.stdin.buffer:
    if line.startswith(b'{"type":"STATE"') or line.startswith(b'{"type": "STATE"'):
        state = line
sys.stdout.buffer.write(state)
