#!/usr/bin/env python3
"""Validates flowc's Argo documents against the vendored Argo schemas, strictly.

Usage: argo_schema.py FILE.yaml...   (each file may hold several YAML documents)

Every WorkflowTemplate, CronWorkflow and Workflow is checked against both vendored
Argo Workflows schemas (v3.7 and v4) and every Sensor against the Argo Events schema.
The published schemas allow unknown fields, which would let a misspelt field through,
so every object definition that lists its properties is closed here
(`additionalProperties: false`). Three places where the generated schemas are stricter
than Argo itself are relaxed: IntOrString and Quantity also take numbers, and a
parameter's `value` / `default` takes any scalar.

Then the rules a schema cannot state: template names are unique, the entrypoint is a
template, every DAG task names an existing template, task names are unique in their
DAG, every dependency names a task of the same DAG, and the dependencies have no cycle.

Prints one line per problem and exits 1 when there is any, 0 otherwise.
"""

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parents[2] / "fixtures" / "schemas"
WORKFLOWS = [
    ("argo-workflows v3.7", "argo-workflows.schema.json", "io.argoproj.workflow.v1alpha1."),
    ("argo-workflows v4", "argo-workflows-v4.schema.json", "io.argoproj.workflow.v1alpha1."),
]
EVENTS = [("argo-events v1.9", "argo-events.schema.json", "io.argoproj.events.v1alpha1.")]
SCHEMAS_FOR_KIND = {
    "WorkflowTemplate": WORKFLOWS,
    "CronWorkflow": WORKFLOWS,
    "Workflow": WORKFLOWS,
    "Sensor": EVENTS,
}
SCALAR = {"type": ["string", "number", "integer", "boolean"]}


def strict(schema):
    """A copy of `schema` with closed objects and Argo's over-strictness relaxed."""
    schema = copy.deepcopy(schema)
    for name, definition in schema.get("definitions", {}).items():
        if name.endswith("intstr.IntOrString"):
            definition["type"] = ["integer", "string"]
        elif name.endswith("resource.Quantity"):
            definition["type"] = ["number", "string"]
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
        if name.endswith("v1alpha1.Parameter"):
            for field in ("value", "default"):
                if field in definition.get("properties", {}):
                    description = definition["properties"][field].get("description")
                    definition["properties"][field] = dict(SCALAR)
                    if description:
                        definition["properties"][field]["description"] = description
    return schema


_VALIDATORS = {}


def validator(file_name, definition):
    key = (file_name, definition)
    if key not in _VALIDATORS:
        schema = strict(json.loads((SCHEMAS / file_name).read_text()))
        root = {"$ref": "#/definitions/" + definition, "definitions": schema["definitions"]}
        if "$schema" in schema and "2020-12" in schema["$schema"]:
            root["$schema"] = schema["$schema"]
            cls = jsonschema.Draft202012Validator
        else:
            cls = jsonschema.Draft7Validator
        _VALIDATORS[key] = cls(root)
    return _VALIDATORS[key]


def schema_problems(doc):
    kind = doc.get("kind")
    schemas = SCHEMAS_FOR_KIND.get(kind)
    if schemas is None:
        return [f"unknown kind {kind!r}"]
    problems = []
    for label, file_name, prefix in schemas:
        errors = sorted(validator(file_name, prefix + kind).iter_errors(doc), key=lambda e: list(e.path))
        for error in errors:
            where = "/".join(str(p) for p in error.path) or "(root)"
            problems.append(f"{label}: {where}: {error.message}")
    return problems


# `a.Succeeded && (b.Failed || c)`: a task name is what precedes `.Status` or stands alone.
DEPENDS_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z]+)?")


def depends_names(expression):
    names = []
    for token in DEPENDS_TOKEN.findall(expression or ""):
        name = token.split(".", 1)[0]
        if name not in names:
            names.append(name)
    return names


def graph_problems(doc):
    spec = doc.get("spec") or {}
    templates = spec.get("templates")
    if templates is None:
        return []
    problems = []
    names = [t.get("name") for t in templates]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"template name {name!r} is used more than once")
    known = set(names)
    if spec.get("entrypoint") not in known:
        problems.append(f"entrypoint {spec.get('entrypoint')!r} is not a template")
    for template in templates:
        dag = template.get("dag")
        if not dag:
            continue
        where = f"template {template.get('name')!r}"
        tasks = dag.get("tasks") or []
        task_names = [t.get("name") for t in tasks]
        for name in sorted({n for n in task_names if task_names.count(n) > 1}):
            problems.append(f"{where}: task name {name!r} is used more than once")
        edges = {}
        for task in tasks:
            if task.get("template") not in known:
                problems.append(f"{where}: task {task.get('name')!r} names unknown template {task.get('template')!r}")
            deps = depends_names(task.get("depends")) + list(task.get("dependencies") or [])
            for dep in deps:
                if dep not in task_names:
                    problems.append(f"{where}: task {task.get('name')!r} depends on unknown task {dep!r}")
            edges[task.get("name")] = [d for d in deps if d in task_names]
        problems.extend(f"{where}: {p}" for p in cycles(edges))
    return problems


def cycles(edges):
    state = {}
    problems = []

    def visit(node, trail):
        state[node] = "open"
        for dep in edges.get(node, []):
            if state.get(dep) == "open":
                problems.append("dependency cycle " + " -> ".join(trail + [node, dep]))
            elif dep not in state:
                visit(dep, trail + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return problems


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    count = 0
    failed = False
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        for i, doc in enumerate(docs):
            count += 1
            for problem in schema_problems(doc) + graph_problems(doc):
                failed = True
                print(f"{path}#{i} ({doc.get('kind')} {((doc.get('metadata') or {}).get('name'))}): {problem}")
    if count == 0:
        print("no documents found", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
