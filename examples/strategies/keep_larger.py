#!/usr/bin/env python3
"""A deliberately broken rule: "keep the larger value".

It sounds reasonable for this lab's workload, where a value is a set of
items that grows with every read-modify-write: keep whichever write holds
more items. But when two concurrent writes hold equally many, it keeps the
one it had first, so which write survives depends on the order the writes
arrived in. Two replicas that received them in different orders keep
different writes forever: they never converge.

`clocklab strategy check examples/strategies/keep_larger.py` finds this
and prints the two writes and the two orders. (To mend it, break the tie
by something every replica agrees on, such as the write id; it is then a
last-write-wins rule ordered by set size, and still loses writes.)
"""

import json
import sys


def answer(request):
    kind = request["type"]
    if kind == "init":
        return {"name": "py-keep-larger", "kind": "last_write_wins"}
    if kind == "stamp":
        return {"stamp": 0}  # unused: this rule looks at values, not stamps
    if kind == "apply":
        new = request["write"]
        for current in request["siblings"]:
            # The bug: on a tie, the write already here wins.
            if len(current["value"]) >= len(new["value"]):
                return {"keep": [current["id"]]}
        return {"keep": [new["id"]]}
    if kind == "read":
        return {"context": None}
    raise ValueError(f"unknown request type {kind!r}")


for line in sys.stdin:
    print(json.dumps(answer(json.loads(line))), flush=True)
