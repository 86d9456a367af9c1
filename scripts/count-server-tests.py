#!/usr/bin/env python3
"""Counts tarn-server's behaviour tests at a git revision: those in process
(`crates/tarn-server/tests`, through `tarn_server::Handler`) against those through the `tarn`
binary (`crates/tarn-cli/tests`: the `serve_*` files, `hostile_client`, `hostile_framing`,
`hostile_load`, and the `hostile_server` tests whose own function runs `tarn serve`, `gc` or `scrub` on a
hostile bucket). Assertions are `assert!`/`assert_eq!`/`assert_ne!` lines and table rows
(`Case::new`).

Usage: scripts/count-server-tests.py [REV ...]   (default HEAD)
"""

import re
import subprocess
import sys

BINARY_FILES = {"hostile_client.rs", "hostile_framing.rs", "hostile_load.rs"}


def files(rev, d):
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:{d}"],
                           capture_output=True, text=True).stdout.split()
    for n in names:
        if n.endswith(".rs"):
            text = subprocess.run(["git", "show", f"{rev}:{d}/{n}"],
                                  capture_output=True, text=True).stdout
            yield n, text


def tests(text):
    return re.split(r"\n#\[test\]\n", "\n" + text)[1:]


def own_function(body):
    """The test function alone (without the helpers that follow it up to the next test)."""
    end = body.find("\n}\n")
    return body if end < 0 else body[:end + 3]


def assertions(body):
    return len(re.findall(r"\bassert(?:_eq|_ne)?!|\bCase::new\(", body))


def count(rev):
    inproc = [0, 0]
    binary = [0, 0]
    for _, text in files(rev, "crates/tarn-server/tests"):
        for body in tests(text):
            if "every_test_file_is_a_module" in body.split("\n", 1)[0]:
                continue
            inproc[0] += 1
            inproc[1] += assertions(body)
    for name, text in files(rev, "crates/tarn-cli/tests"):
        for body in tests(text):
            if (name.startswith("serve_") or name in BINARY_FILES
                    or (name == "hostile_server.rs"
                        and ("serve_s3" in own_function(body)
                             or "TarnServer" in own_function(body)))):
                binary[0] += 1
                binary[1] += assertions(body)
    t = 100 * inproc[0] / max(1, inproc[0] + binary[0])
    a = 100 * inproc[1] / max(1, inproc[1] + binary[1])
    print(f"{rev}: in process {inproc[0]} tests, {inproc[1]} assertions; through the binary "
          f"{binary[0]} tests, {binary[1]} assertions; in process {t:.0f}% of tests, {a:.0f}% of assertions")


for rev in sys.argv[1:] or ["HEAD"]:
    count(rev)
