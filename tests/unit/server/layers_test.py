#!/usr/bin/env python3
"""layers_test.py - server/ is one folder per layer: a file includes only headers of its own
folder and of the layers below it (the order of server/meson.build). The top-level folders
are layers too: config/ < shm/ < view/ < server/ and cli/ (siblings: neither includes the
other). Prints TAP; an include that reaches up or sideways is a failure that names the
file, the line and the header."""

import os
import re
import sys

# Lower numbers are lower layers; folders of one number must not include each other.
LAYERS = {
    "common": 0,
    "tls": 0,
    "cluster": 1,
    "upstream": 1,
    "http": 1,
    "api": 1,
    "policy": 2,
    "obs": 2,
    "xlate": 2,
    "proxy": 3,
    "": 4,  # server/ itself: worker.c, main.c
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"server/([^"]+)"')
TOP = {"config": 0, "shm": 1, "view": 2, "server": 3, "cli": 3}
TOP_INCLUDE = re.compile(r'^\s*#\s*include\s+"(config|shm|view|server|cli)/([^"]+)"')


def check_top(root):
    problems, files = [], 0
    for top, level in TOP.items():
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".c", ".h")):
                    continue
                files += 1
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = TOP_INCLUDE.match(line)
                        if m and m.group(1) != top and TOP[m.group(1)] >= level:
                            problems.append(f"{os.path.relpath(path, root)}:{lineno}: includes "
                                            f"{m.group(1)}/{m.group(2)}, a layer not below {top}/")
    return files, problems


def check(root):
    problems, files = [], 0
    server = os.path.join(root, "server")
    for dirpath, _, names in os.walk(server):
        folder = os.path.relpath(dirpath, server)
        folder = "" if folder == "." else folder
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            files += 1
            path = os.path.join(dirpath, name)
            if folder not in LAYERS:
                problems.append(f"{os.path.relpath(path, root)}: folder server/{folder} has no layer")
                continue
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = os.path.dirname(m.group(1))
                    if target == folder:
                        continue
                    if target not in LAYERS:
                        problems.append(f"{os.path.relpath(path, root)}:{lineno}: server/{m.group(1)}"
                                        " is in no layer")
                    elif LAYERS[target] >= LAYERS[folder]:
                        problems.append(f"{os.path.relpath(path, root)}:{lineno}: includes "
                                        f"server/{m.group(1)}, a layer not below server/{folder}")
    return files, problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "..")
    files, problems = check(os.path.abspath(root))
    tfiles, tproblems = check_top(os.path.abspath(root))
    print("1..3")
    print(("ok" if files > 30 else "not ok") + f" 1 - read {files} files of server/")
    print(("ok" if not problems else "not ok") + " 2 - every include goes to the same or a lower layer")
    for p in problems:
        print("# " + p)
    print(("ok" if not tproblems else "not ok") +
          f" 3 - {tfiles} files of config/ shm/ view/ server/ cli/ include only lower folders")
    for p in tproblems:
        print("# " + p)
    return 0 if files > 30 and not problems and not tproblems else 1


if __name__ == "__main__":
    sys.exit(main())
