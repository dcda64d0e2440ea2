#!/usr/bin/env python3
"""Last write wins by the writer's wall clock, as a clocklab plugin strategy.

This is the built-in `lww-wall` again, in Python, to show the plugin
protocol (docs/design.md, "Plugin strategies"). clocklab starts one copy of
this program per replica and sends it one JSON request per line on stdin;
it answers each with one JSON line on stdout, in order.

A stamp is [physical_ns, replica]: the clock reading of the replica that
accepted the write, with its id to break ties. The write with the greatest
stamp survives. If the clocks lie, a write that read another can get the
smaller stamp and be silently dropped: DDIA Figure 8-3.

Only the standard library; run `clocklab strategy check` on it.
"""

import json
import sys

replica = None  # this replica's id, from `init`


def order(write):
    """What last-write-wins compares: the stamp, then (origin, seq) as the
    built-in does for two writes of one replica with equal readings."""
    physical_ns, origin = write["stamp"]
    return (physical_ns, origin, write["origin"], write["seq"])


def answer(request):
    global replica
    kind = request["type"]
    if kind == "init":
        replica = request["replica"]
        return {"name": "py-lww-wall", "kind": "last_write_wins"}
    if kind == "stamp":
        # The client's context is ignored: a wall clock cannot use it.
        return {"stamp": [request["physical_ns"], replica]}
    if kind == "apply":
        # Keep the one write with the greatest stamp among what we had and
        # the new write. max() of the same writes is the same in any order
        # and with any repeats, so every replica keeps the same write.
        candidates = request["siblings"] + [request["write"]]
        return {"keep": [max(candidates, key=order)["id"]]}
    if kind == "read":
        siblings = request["siblings"]
        return {"context": siblings[0]["stamp"] if siblings else None}
    raise ValueError(f"unknown request type {kind!r}")


def main():
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
