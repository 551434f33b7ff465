#!/usr/bin/env python3
"""CPU ticks (user + system, in clock ticks) of processes, read from
/proc/PID/stat in one pass so that every figure is taken at the same moment.

usage: proc_cpu.py NAME=PID[,PID...]...
Prints "NAME TICKS" per argument, the sum over its PIDs; a process gone
counts 0. Only /proc/PID/stat is read: command lines (/proc/PID/cmdline)
can take seconds to read on a loaded machine, so callers find PIDs first.
"""
import sys


def ticks(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


for arg in sys.argv[1:]:
    name, _, pids = arg.partition("=")
    print(name, sum(ticks(p) for p in pids.split(",") if p))
