#!/usr/bin/env python3
"""Validates Step Functions state machines against the vendored asl-validator schemas.

Usage: asl_schema.py FILE.json...   (each file one state machine definition)

1. The JSON schemas of asl-validator 4.0.0 (`fixtures/schemas/asl/`), as asl-validator
   applies them: every state gets the default `QueryLanguage` ("JSONPath") first, and
   the formats it implements in code are implemented here: JSONPath paths, reference
   paths, result paths, payload-template values (a path or an intrinsic function call,
   parsed), ARNs of Task resources, and JSONata strings.
2. The rules a schema cannot state, for the top-level machine and every Parallel
   branch and Map ItemProcessor on its own ("scope"): `StartAt` names a state of the
   scope; every `Next`, `Default`, Choice rule and Catch target names a state of the
   same scope; every state is reachable from `StartAt`; the scope has a terminal state
   (`End: true`, Succeed or Fail); each state that is not a Choice, Succeed or Fail has
   exactly one of `Next` and `End`; state names are unique across the whole machine.

Prints one line per problem and exits 1 when there is any, 0 otherwise.
"""

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[2] / "fixtures" / "schemas" / "asl"
ROOT = "http://asl-validator.cloud/state-machine.json"

# asl-validator's ARN pattern (src/checks/formats.ts).
ARN = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):[^:\n]+:[^:\n]*:\d*:([^:/*]+([:/].*[^:/]+)?)$", re.I
)
INTRINSICS = {
    "States.Format", "States.StringToJson", "States.JsonToString", "States.Array",
    "States.ArrayPartition", "States.ArrayContains", "States.ArrayRange",
    "States.ArrayGetItem", "States.ArrayLength", "States.ArrayUnique",
    "States.Base64Encode", "States.Base64Decode", "States.Hash", "States.JsonMerge",
    "States.MathRandom", "States.MathAdd", "States.StringSplit", "States.UUID",
}
NAME = r"(?:[A-Za-z_][A-Za-z0-9_-]*)"
SEGMENT = rf"(?:\.{NAME}|\[(?:\d+|'[^']*'|\*)\]|\.\*)"
REFERENCE_SEGMENT = rf"(?:\.{NAME}|\[(?:\d+|'[^']*')\])"
PATH = re.compile(rf"^\$\$?(?:{SEGMENT})*$")
REFERENCE_PATH = re.compile(rf"^\$\$?(?:{REFERENCE_SEGMENT})*$")
RESULT_PATH = re.compile(rf"^\$(?:{REFERENCE_SEGMENT})*$")


class Intrinsic:
    """A recursive-descent reader of one intrinsic function call."""

    def __init__(self, text):
        self.text = text
        self.pos = 0

    def error(self, what):
        raise ValueError(f"{what} at {self.pos} in {self.text!r}")

    def skip_space(self):
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def call(self):
        match = re.compile(r"States\.[A-Za-z0-9]+").match(self.text, self.pos)
        if not match or match.group(0) not in INTRINSICS:
            self.error("unknown intrinsic function")
        self.pos = match.end()
        if self.text[self.pos:self.pos + 1] != "(":
            self.error("expected `(`")
        self.pos += 1
        self.skip_space()
        if self.text[self.pos:self.pos + 1] == ")":
            self.pos += 1
            return
        while True:
            self.skip_space()
            self.argument()
            self.skip_space()
            ch = self.text[self.pos:self.pos + 1]
            self.pos += 1
            if ch == ")":
                return
            if ch != ",":
                self.error("expected `,` or `)`")

    def argument(self):
        rest = self.text[self.pos:]
        if rest.startswith("'"):
            self.pos += 1
            while True:
                if self.pos >= len(self.text):
                    self.error("unterminated string")
                ch = self.text[self.pos]
                if ch == "\\":
                    if self.text[self.pos + 1:self.pos + 2] not in ("'", "{", "}", "\\"):
                        self.error("bad escape")
                    self.pos += 2
                    continue
                if ch in "{}":
                    # `{}` is a placeholder (in States.Format); a lone brace must be escaped.
                    if self.text[self.pos:self.pos + 2] == "{}":
                        self.pos += 2
                        continue
                    self.error("unescaped brace")
                self.pos += 1
                if ch == "'":
                    return
        elif rest.startswith("States."):
            self.call()
        elif rest.startswith("$"):
            match = re.compile(r"\$\$?(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*").match(self.text, self.pos)
            self.pos = match.end()
        else:
            match = re.compile(r"-?\d+(?:\.\d+)?|true|false|null").match(self.text, self.pos)
            if not match:
                self.error("expected an argument")
            self.pos = match.end()

    def whole(self):
        self.call()
        if self.pos != len(self.text):
            self.error("text after the call")


def is_intrinsic(text):
    try:
        Intrinsic(text).whole()
        return True
    except (ValueError, IndexError):
        return False


def format_checker():
    checker = jsonschema.FormatChecker()

    def register(name, function):
        checker.checks(name)(lambda value: not isinstance(value, str) or function(value))

    register("asl_path", lambda v: bool(PATH.match(v)))
    register("asl_ref_path", lambda v: bool(REFERENCE_PATH.match(v)))
    register("asl_result_path", lambda v: bool(RESULT_PATH.match(v)))
    register(
        "asl_payload_template",
        lambda v: bool(PATH.match(v)) or is_intrinsic(v),
    )
    register("asl_arn", lambda v: bool(ARN.match(v)))
    register("jsonata_string", lambda v: v.strip().startswith("{%") and v.strip().endswith("%}"))
    register("maybe_jsonata_string", lambda v: not (v.strip().startswith("{%") or v.strip().endswith("%}"))
             or (v.strip().startswith("{%") and v.strip().endswith("%}")))
    return checker


def registry():
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        uri = schema["$id"].rstrip("#")
        resources.append((uri, Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def with_default_query_language(node):
    """asl-validator's first step: every state of every `States` gets "JSONPath"."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "States" and isinstance(value, dict):
                for state in value.values():
                    if isinstance(state, dict):
                        state.setdefault("QueryLanguage", "JSONPath")
            with_default_query_language(value)
    elif isinstance(node, list):
        for item in node:
            with_default_query_language(item)


def targets(state, catch=True):
    """Every state name `state` can go to (through its Catch too, unless `catch` is false)."""
    out = []
    if isinstance(state.get("Next"), str):
        out.append(state["Next"])
    if isinstance(state.get("Default"), str):
        out.append(state["Default"])
    for rule in state.get("Choices") or []:
        if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
            out.append(rule["Next"])
    for catcher in (state.get("Catch") or []) if catch else []:
        if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
            out.append(catcher["Next"])
    return out


def check_scope(machine, where, seen_names, problems):
    states = machine.get("States")
    if not isinstance(states, dict):
        return
    start = machine.get("StartAt")
    if start not in states:
        problems.append(f"{where}: StartAt `{start}` is not a state of this scope")
    terminal = False
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        if name in seen_names:
            problems.append(f"{where}: state name `{name}` is used twice in the machine")
        seen_names.add(name)
        kind = state.get("Type")
        if kind in ("Succeed", "Fail") or state.get("End") is True:
            terminal = True
        if kind not in ("Choice", "Succeed", "Fail"):
            if ("Next" in state) == (state.get("End") is True):
                problems.append(f"{where}.{name}: needs exactly one of Next and End")
        for target in targets(state):
            if target not in states:
                problems.append(f"{where}.{name}: goes to `{target}`, which is not a state of this scope")
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                check_scope(branch, f"{where}.{name}.Branches[{i}]", seen_names, problems)
        for field in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(field), dict):
                check_scope(state[field], f"{where}.{name}.{field}", seen_names, problems)
    if not terminal:
        problems.append(f"{where}: no terminal state (End, Succeed or Fail)")
    reached = set()
    work = [start] if start in states else []
    while work:
        name = work.pop()
        if name in reached:
            continue
        reached.add(name)
        state = states.get(name)
        if isinstance(state, dict):
            work.extend(t for t in targets(state) if t in states)
    for name in states:
        if name not in reached:
            problems.append(f"{where}.{name}: not reachable from `{start}`")
    # A state from which no terminal state can be reached traps the execution (a Catch
    # is no way out: it is taken only when the state fails).
    ends = {
        name for name, state in states.items()
        if isinstance(state, dict)
        and (state.get("Type") in ("Succeed", "Fail") or state.get("End") is True)
    }
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if name not in ends and isinstance(state, dict) and any(
                t in ends for t in targets(state, catch=False)
            ):
                ends.add(name)
                changed = True
    for name in states:
        if name not in ends:
            problems.append(f"{where}.{name}: no terminal state can be reached from it")


def leaves(error):
    """The errors that say what is wrong: under a failed oneOf, the leaf errors of the
    alternatives, less those that only say an alternative is for another state type or
    query language, deepest first."""
    if not error.context:
        return [error]
    found = []
    for sub in error.context:
        found.extend(leaves(sub))
    useful = [
        e for e in found
        if not (e.validator == "enum" and e.absolute_path and e.absolute_path[-1] in ("QueryLanguage", "Type"))
    ]
    return sorted(useful or found, key=lambda e: -len(e.absolute_path))


def validate(definition, validator):
    problems = []
    document = copy.deepcopy(definition)
    with_default_query_language(document)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        for leaf in leaves(error)[:2]:
            path = "$" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in leaf.absolute_path
            )
            message = leaf.message if len(leaf.message) < 300 else leaf.message[:300] + "..."
            problems.append(f"{path}: {message}")
    check_scope(definition, "$", set(), problems)
    return problems


def main(paths):
    if not paths:
        print("usage: asl_schema.py FILE.json...", file=sys.stderr)
        return 2
    schema = {"$ref": ROOT}
    validator = jsonschema.Draft7Validator(
        schema, registry=registry(), format_checker=format_checker()
    )
    failed = False
    for path in paths:
        try:
            definition = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            print(f"{path}: cannot read: {err}")
            failed = True
            continue
        for problem in validate(definition, validator):
            print(f"{path}: {problem}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
