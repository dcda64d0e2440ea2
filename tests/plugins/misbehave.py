#!/usr/bin/env python3
"""A plugin that keeps the last write wins by wall clock, then misbehaves.

For clocklab's failure tests: after `after` requests (a parameter) replica
`replica` (another) does what `how` says: "crash" exits with a traceback,
"hang" stops answering, "garbage" answers a line that is not JSON.
"""

import json
import sys
import time

settings = {}
replica = None
handled = 0


def answer(request):
    global replica
    kind = request["type"]
    if kind == "init":
        replica = request["replica"]
        settings.update(request["parameters"])
        return {"name": "py-" + settings["how"], "kind": "last_write_wins"}
    if kind == "stamp":
        return {"stamp": [request["physical_ns"], replica]}
    if kind == "apply":
        candidates = request["siblings"] + [request["write"]]
        return {"keep": [max(candidates, key=lambda w: (w["stamp"], w["seq"]))["id"]]}
    if kind == "read":
        siblings = request["siblings"]
        return {"context": siblings[0]["stamp"] if siblings else None}
    raise ValueError(kind)


for line in sys.stdin:
    request = json.loads(line)
    if request["type"] != "init" and replica == settings.get("replica", replica):
        handled += 1
        if handled > settings.get("after", 0):
            how = settings["how"]
            if how == "crash":
                raise RuntimeError("deliberate crash, for the test")
            if how == "hang":
                time.sleep(3600)
            if how == "garbage":
                print("this is not JSON", flush=True)
                continue
    print(json.dumps(answer(request)), flush=True)
