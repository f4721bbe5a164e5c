"""Dump Metaflow's own view of a flow's step graph as JSON.

This is the reference side of the fidelity check: it imports the flow file (which flowc
never does) and reads the graph with Metaflow's `FlowGraph`, then prints it in the shape
of `flowc graph --format json`, so that `compare.py` can diff the two.

Usage: metaflow_graph.py FLOW_FILE [FLOW_CLASS]
"""

import importlib.util
import inspect
import json
import os
import sys


def load_module(path):
    """Import the flow file under a private module name, so `__main__` blocks stay idle."""
    spec = importlib.util.spec_from_file_location("_fidelity_flow", path)
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    # Flow files resolve IncludeFile paths and sibling imports relative to themselves.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(module)
    return module


def flow_classes(module):
    """FlowSpec subclasses defined in the module itself, in definition order."""
    from metaflow import FlowSpec

    found = []
    for _, value in vars(module).items():
        if (
            inspect.isclass(value)
            and issubclass(value, FlowSpec)
            and value is not FlowSpec
            and value.__module__ == module.__name__
        ):
            found.append(value)
    return found


def pick_flow(module, name):
    classes = flow_classes(module)
    if name:
        for cls in classes:
            if cls.__name__ == name:
                return cls
        raise SystemExit("no flow class %s in the file" % name)
    # A base class that another flow in the file extends is not itself the flow.
    leaves = [
        c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)
    ]
    if len(leaves) != 1:
        raise SystemExit(
            "expected one flow class, found %s; pass its name"
            % ", ".join(c.__name__ for c in leaves)
        )
    return leaves[0]


def step_json(node):
    switch = None
    if node.type == "split-switch":
        switch = {
            "condition": node.condition,
            "cases": {str(k): v for k, v in node.switch_cases.items()},
        }
    return {
        "name": node.name,
        "type": node.type,
        "out": list(node.out_funcs),
        "foreach": node.foreach_param if node.type == "foreach" else None,
        "switch": switch,
        "is_join": node.num_args > 1,
        "doc": node.doc or None,
    }


def graph_json(cls):
    from metaflow.graph import FlowGraph
    from metaflow.lint import LintWarn, linter

    graph = FlowGraph(cls)
    # A valid fixture must be valid for Metaflow too: run its own checker first, so a
    # fixture Metaflow would refuse fails loudly instead of being compared.
    try:
        linter.run_checks(graph)
    except LintWarn as err:
        raise SystemExit("metaflow rejects %s: %s" % (cls.__name__, err))
    # Metaflow keeps nodes in `dir()` order (alphabetical); the comparison is by name.
    return {
        "flow": graph.name,
        "start": graph.start_step,
        "end": graph.end_step,
        "steps": [step_json(node) for node in graph.nodes.values()],
    }


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__.strip().splitlines()[-1])
    module = load_module(argv[1])
    cls = pick_flow(module, argv[2] if len(argv) == 3 else None)
    json.dump(graph_json(cls), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
