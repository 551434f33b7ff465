#!/usr/bin/env python3
"""CPU ticks (user + system, in clock ticks) of processes, read from /proc in
one pass so that every figure is taken at the same moment.

usage: proc_cpu.py NAME=PID... [NAME=/REGEX/...]
A PID names one process; /REGEX/ sums every process whose command line
(arguments joined by spaces) matches REGEX (for PostgreSQL's backends of one
database, say). Prints "NAME TICKS" per argument; a process gone counts 0.
"""
import os
import re
import sys


def ticks(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def cmdlines():
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                yield pid, f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue


def main(args):
    patterns = {}
    out = []
    for a in args:
        name, _, what = a.partition("=")
        if what.startswith("/") and what.endswith("/") and len(what) > 1:
            patterns[name] = re.compile(what[1:-1])
            out.append((name, None))
        else:
            out.append((name, ticks(what)))
    sums = dict.fromkeys(patterns, 0)
    if patterns:
        for pid, cmd in cmdlines():
            for name, rx in patterns.items():
                if rx.search(cmd):
                    sums[name] += ticks(pid)
    for name, t in out:
        print(name, sums[name] if t is None else t)


if __name__ == "__main__":
    main(sys.argv[1:])
