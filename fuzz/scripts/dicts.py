#!/usr/bin/env python3
"""Write libFuzzer dictionaries (dict/<target>.dict) from the words of the seed corpora and
the string literals of the parsers' sources. Run from fuzz/."""
import glob
import os
import re

SRC = {
    "lvs_cf": ["../crates/rvs-config/src/lvs.rs"],
    "keepalived": glob.glob("../crates/rvs-config/src/keepalived/*.rs"),
    "ipvsadm_rules": glob.glob("../crates/rvs-config/src/ipvsadm/*.rs"),
    "ipvsadm_command": glob.glob("../crates/rvs-config/src/ipvsadm/*.rs"),
    "control": glob.glob("../crates/rvs-config/src/ipvsadm/*.rs"),
}
word = re.compile(r"^-{0,2}[A-Za-z][A-Za-z0-9_.-]{1,30}$")
for target, srcs in SRC.items():
    words = set()
    for f in glob.glob(f"corpus/{target}/*"):
        words.update(w for w in open(f, errors="replace").read().split() if word.match(w))
    for f in srcs:
        for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', open(f).read()):
            if word.match(lit):
                words.add(lit)
    with open(f"dict/{target}.dict", "w") as out:
        for w in sorted(words):
            out.write('"%s"\n' % w.replace("\\", "\\\\"))
    print(target, len(words))
