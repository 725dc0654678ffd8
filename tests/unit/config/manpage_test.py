#!/usr/bin/env python3
"""manpage_test.py SCHEMA_KEYS PAGE - the llmgate.yaml(5) page against the config schema.

SCHEMA_KEYS is tests/unit/config/schema_keys (it prints every key of config/schema.c with
its kind, rule and default); PAGE is doc/llmgate.yaml.5.scd, where each key has an entry
line "*path* (kind ..., default ...)". Prints TAP. Fails when the page misses a key, names
one the schema does not have, or gives an integer a default or a range, or an enumeration
values, other than the schema's."""

import re
import subprocess
import sys

ENTRY = re.compile(r"^\*([a-z0-9_.\[\]]+)\* \((.*)\)\s*$")


def main():
    exe, page = sys.argv[1], sys.argv[2]
    schema = {}
    for line in subprocess.run([exe], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        path, kind, rule, default = line.split("\t")
        schema[path] = (kind, rule, default)
    documented = {}
    with open(page, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = ENTRY.match(line)
            if m:
                documented[m.group(1)] = (n, m.group(2).replace("\\", ""))

    results = []
    for path, (kind, rule, default) in schema.items():
        if path not in documented:
            results.append((False, f"{path}: in config/schema.c but not in {page}"))
            continue
        n, head = documented[path]
        problems = []
        if kind == "integer":
            if not re.search(rf"\bdefault {re.escape(default)}\b", head):
                problems.append(f"the schema's default is {default}")
            r = re.search(r"from (\d+) to (\d+)", rule)
            if r and f"{r.group(1)}-{r.group(2)}" not in head:
                problems.append(f"the schema's range is {r.group(1)}-{r.group(2)}")
            if "positive" in rule and ">= 1" not in head:
                problems.append("the schema requires >= 1")
        if kind == "enum":
            for v in rule.split("must be one of", 1)[1].split(","):
                if not re.search(rf"(^|[ ,]){re.escape(v.strip())}([ ,]|$)", head):
                    problems.append(f"the schema allows {v.strip()}")
        results.append((not problems, f"{path} (line {n})" +
                        (": " + "; ".join(problems) if problems else "")))
    for path, (n, _) in documented.items():
        if path not in schema:
            results.append((False, f"{path} (line {n}): documented but not in config/schema.c"))

    print(f"1..{len(results)}")
    for i, (ok, what) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {what}")
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
