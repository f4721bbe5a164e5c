#!/usr/bin/env python3
"""Validates AWS Batch RegisterJobDefinition requests against the vendored model.

Usage: batch_jobdef.py FILE.json...   (each file one request, or a JSON list of them)

1. The request shape of botocore's Batch model (`fixtures/schemas/batch/`): unknown
   members, required members, types, enums, string lengths, list sizes and integer
   ranges, recursively.
2. What the model does not state, from the RegisterJobDefinition documentation:
   the name (letters, digits, `-`, `_`, at most 128), `type: container` with
   `containerProperties`, exactly one VCPU and one MEMORY requirement (numbers; whole
   vCPUs on EC2; at most one GPU requirement, a whole number, not on Fargate),
   Fargate's vCPU/memory combinations, Fargate's execution role and the fields only
   EC2 (linuxParameters, privileged) or only Fargate (fargatePlatformConfiguration,
   networkConfiguration, ephemeralStorage 21-200 GiB) take, `timeout` of at least 60
   seconds, 1-10 attempts and at most 5 `evaluateOnExit` entries, role ARNs, and
   environment names not starting with `AWS_BATCH`.

Prints one line per problem and exits 1 when there is any, 0 otherwise.
"""

import json
import re
import sys
from pathlib import Path

MODEL = Path(__file__).resolve().parents[2] / "fixtures" / "schemas" / "batch" / "register-job-definition.json"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
FARGATE_MEMORY = {
    0.25: range(512, 2049, 512),
    0.5: range(1024, 4097, 1024),
    1: range(2048, 8193, 1024),
    2: range(4096, 16385, 1024),
    4: range(8192, 30721, 1024),
    8: range(16384, 61441, 4096),
    16: range(32768, 122881, 8192),
}


def check_shape(shapes, name, value, path, problems):
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: must be an object")
            return
        for member in shape.get("required", []):
            if member not in value:
                problems.append(f"{path}: `{member}` is required")
        for key, item in value.items():
            member = shape["members"].get(key)
            if member is None:
                problems.append(f"{path}: unknown member `{key}`")
                continue
            check_shape(shapes, member["shape"], item, f"{path}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list")
            return
        if "min" in shape and len(value) < shape["min"]:
            problems.append(f"{path}: at least {shape['min']} items")
        if "max" in shape and len(value) > shape["max"]:
            problems.append(f"{path}: at most {shape['max']} items")
        for i, item in enumerate(value):
            check_shape(shapes, shape["member"]["shape"], item, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: must be an object")
            return
        for key, item in value.items():
            check_shape(shapes, shape["key"]["shape"], key, f"{path} key", problems)
            check_shape(shapes, shape["value"]["shape"], item, f"{path}.{key}", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: must be a string")
            return
        if "enum" in shape and value not in shape["enum"]:
            problems.append(f"{path}: {value!r} is not one of {', '.join(shape['enum'])}")
        if "min" in shape and len(value) < shape["min"]:
            problems.append(f"{path}: at least {shape['min']} characters")
        if "max" in shape and len(value) > shape["max"]:
            problems.append(f"{path}: at most {shape['max']} characters")
        if "pattern" in shape and not re.search(shape["pattern"], value):
            problems.append(f"{path}: does not match {shape['pattern']}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: must be an integer")
            return
        if "min" in shape and value < shape["min"]:
            problems.append(f"{path}: must be >= {shape['min']}")
        if "max" in shape and value > shape["max"]:
            problems.append(f"{path}: must be <= {shape['max']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: must be true or false")
    elif kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: must be a number")


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def check_rules(jd, problems):
    name = jd.get("jobDefinitionName")
    if isinstance(name, str) and not NAME.match(name):
        problems.append(f"jobDefinitionName: {name!r}: letters, digits, - and _ only, 1-128 characters")
    if jd.get("type") != "container" or not isinstance(jd.get("containerProperties"), dict):
        problems.append("type: must be `container` with containerProperties")
        return
    fargate = "FARGATE" in (jd.get("platformCapabilities") or ["EC2"])
    cont = jd["containerProperties"]
    requirements = {}
    for i, req in enumerate(cont.get("resourceRequirements") or []):
        kind = req.get("type")
        if kind in requirements:
            problems.append(f"containerProperties.resourceRequirements[{i}]: a second {kind}")
        requirements[kind] = number(req.get("value"))
        if requirements[kind] is None or requirements[kind] <= 0:
            problems.append(f"containerProperties.resourceRequirements[{i}]: {req.get('value')!r} is not a positive number")
    vcpu, memory, gpu = requirements.get("VCPU"), requirements.get("MEMORY"), requirements.get("GPU")
    if vcpu is None or memory is None:
        problems.append("containerProperties.resourceRequirements: needs VCPU and MEMORY")
    if memory is not None and memory < 4:
        problems.append("containerProperties.resourceRequirements: MEMORY is at least 4 MiB")
    if gpu is not None and gpu != int(gpu):
        problems.append("containerProperties.resourceRequirements: GPU must be a whole number")
    if not isinstance(cont.get("command"), list) or not cont["command"]:
        problems.append("containerProperties.command: a non-empty list is required")
    if not cont.get("image"):
        problems.append("containerProperties.image: required")
    if fargate:
        if gpu is not None:
            problems.append("containerProperties.resourceRequirements: GPU is not available on Fargate")
        if vcpu is not None and vcpu not in FARGATE_MEMORY:
            problems.append(f"containerProperties.resourceRequirements: Fargate VCPU {vcpu:g} is not one of {sorted(FARGATE_MEMORY)}")
        elif vcpu is not None and memory is not None and memory not in FARGATE_MEMORY[vcpu]:
            problems.append(f"containerProperties.resourceRequirements: Fargate VCPU {vcpu:g} does not allow MEMORY {memory:g}")
        if not cont.get("executionRoleArn"):
            problems.append("containerProperties.executionRoleArn: required on Fargate")
        for field in ("linuxParameters", "privileged"):
            if field in cont:
                problems.append(f"containerProperties.{field}: not available on Fargate")
        storage = (cont.get("ephemeralStorage") or {}).get("sizeInGiB")
        if storage is not None and not 21 <= storage <= 200:
            problems.append("containerProperties.ephemeralStorage.sizeInGiB: 21-200 on Fargate")
    else:
        if vcpu is not None and vcpu != int(vcpu):
            problems.append("containerProperties.resourceRequirements: EC2 takes whole vCPUs")
        for field in ("fargatePlatformConfiguration", "networkConfiguration", "ephemeralStorage"):
            if field in cont:
                problems.append(f"containerProperties.{field}: only for Fargate")
    for field in ("jobRoleArn", "executionRoleArn"):
        if field in cont and not ROLE_ARN.match(str(cont[field])):
            problems.append(f"containerProperties.{field}: {cont[field]!r} is not an IAM role ARN")
    for i, env in enumerate(cont.get("environment") or []):
        if str(env.get("name", "")).startswith("AWS_BATCH"):
            problems.append(f"containerProperties.environment[{i}]: names starting with AWS_BATCH are reserved")
    seconds = (jd.get("timeout") or {}).get("attemptDurationSeconds")
    if seconds is not None and seconds < 60:
        problems.append("timeout.attemptDurationSeconds: at least 60")
    retry = jd.get("retryStrategy")
    if retry is not None:
        attempts = retry.get("attempts")
        if not isinstance(attempts, int) or not 1 <= attempts <= 10:
            problems.append("retryStrategy.attempts: 1-10")
        if len(retry.get("evaluateOnExit") or []) > 5:
            problems.append("retryStrategy.evaluateOnExit: at most 5 entries")


def validate(jd, model):
    problems = []
    check_shape(model["shapes"], model["input"], jd, "$", problems)
    if isinstance(jd, dict):
        check_rules(jd, problems)
    return problems


def main(paths):
    if not paths:
        print("usage: batch_jobdef.py FILE.json...", file=sys.stderr)
        return 2
    model = json.loads(MODEL.read_text())
    failed = False
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            print(f"{path}: cannot read: {err}")
            failed = True
            continue
        for i, jd in enumerate(data if isinstance(data, list) else [data]):
            for problem in validate(jd, model):
                print(f"{path}[{i}]: {problem}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
