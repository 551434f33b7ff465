#!/usr/bin/env python3
"""machine.py: one line on how costly this machine's kernel is.

Virtual machines differ most in what a page fault and a system call cost,
and both weigh on every figure the benchmarks print (fresh cache memory,
loopback sockets). Printed beside the core count so runs on different
machines can be told apart: a first touch costs well under a microsecond
per page on bare metal; the 2-core VM of 2026-11-26 took about 12 us
(and 1.1 us per getpid from Go).
"""
import mmap
import os
import time

PAGES = 32768  # 128 MiB
m = mmap.mmap(-1, PAGES * mmap.PAGESIZE)
t = time.perf_counter()
for i in range(0, PAGES * mmap.PAGESIZE, mmap.PAGESIZE):
    m[i] = 1
fault = (time.perf_counter() - t) / PAGES
m.close()
N = 200000
t = time.perf_counter()
for _ in range(N):
    os.getppid()
call = (time.perf_counter() - t) / N
print("page first touch %.2f us, syscall %.2f us (Python loop included)" % (fault * 1e6, call * 1e6))
