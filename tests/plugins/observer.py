#!/usr/bin/env python3
"""A Lamport-clock last-write-wins rule that keeps its counter in its process.

It asks to observe peers' writes, so its answers depend on what it has seen,
not only on each request: `clocklab explore` must refuse it (the search
copies replicas to branch and cannot copy a process).
"""

import json
import sys

counter = 0
replica = None


def answer(request):
    global counter, replica
    kind = request["type"]
    if kind == "init":
        replica = request["replica"]
        return {"name": "py-observer", "kind": "last_write_wins", "observes": True}
    if kind == "stamp":
        counter += 1
        return {"stamp": [counter, replica]}
    if kind == "observe":
        counter = max(counter, request["write"]["stamp"][0])
        return {}
    if kind == "apply":
        candidates = request["siblings"] + [request["write"]]
        return {"keep": [max(candidates, key=lambda w: w["stamp"])["id"]]}
    if kind == "read":
        return {"context": None}
    raise ValueError(kind)


for line in sys.stdin:
    print(json.dumps(answer(json.loads(line))), flush=True)
