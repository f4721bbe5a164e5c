"""Compare flowc's graph JSON with Metaflow's, step by step.

Usage: compare.py FLOWC_JSON METAFLOW_JSON

Prints one line per difference and exits 1 if there is any. Steps are matched by
name (the two tools list them in different orders); out-edges are compared in order,
since the order of `self.next(...)` arguments is the order of the branches.
"""

import json
import sys

STEP_FIELDS = ("type", "out", "foreach", "switch", "is_join", "doc")


def normalise_doc(doc):
    """Docstrings compared by content: both tools dedent, but may differ in blank
    lines and trailing space, which no one reads."""
    if not doc:
        return None
    lines = [line.strip() for line in doc.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def normalise_step(step):
    out = {field: step.get(field) for field in STEP_FIELDS}
    out["doc"] = normalise_doc(out["doc"])
    if out["switch"] is not None:
        switch = out["switch"]
        out["switch"] = {
            "condition": switch.get("condition"),
            "cases": {str(k): v for k, v in (switch.get("cases") or {}).items()},
        }
    return out


def differences(flowc, metaflow):
    diffs = []
    for field in ("flow", "start", "end"):
        if flowc.get(field) != metaflow.get(field):
            diffs.append(
                "%s: flowc %r, metaflow %r" % (field, flowc.get(field), metaflow.get(field))
            )
    ours = {s["name"]: normalise_step(s) for s in flowc.get("steps", [])}
    theirs = {s["name"]: normalise_step(s) for s in metaflow.get("steps", [])}
    for name in sorted(set(ours) - set(theirs)):
        diffs.append("step %s: only flowc has it" % name)
    for name in sorted(set(theirs) - set(ours)):
        diffs.append("step %s: only metaflow has it" % name)
    for name in sorted(set(ours) & set(theirs)):
        for field in STEP_FIELDS:
            a, b = ours[name][field], theirs[name][field]
            if a != b:
                diffs.append(
                    "step %s: %s: flowc %s, metaflow %s"
                    % (name, field, json.dumps(a), json.dumps(b))
                )
    return diffs


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[2])
    with open(argv[1]) as f:
        flowc = json.load(f)
    with open(argv[2]) as f:
        metaflow = json.load(f)
    diffs = differences(flowc, metaflow)
    for line in diffs:
        print("  " + line)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
