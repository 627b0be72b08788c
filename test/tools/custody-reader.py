#!/usr/bin/env python3
"""A program using a FUSE mount while its server is killed and taken over (ADR 0083).

Holds PATH open and loops: pwrite record i (8 bytes) at offset 8*i, pread it back, fstat. Prints
"ready", then "gap MS END_MS" for every pause longer than 5 ms between completed iterations and
"error NAME TEXT" for every failed call; on SIGTERM it closes the file and prints one JSON line:
{"writes": N, "errors": {NAME: COUNT}, "maxGapMs": X}. Every record below N was acknowledged.
"""
import errno
import json
import os
import signal
import sys
import time

stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
print("ready", flush=True)
i = 0
errors = {}
last = time.time()
max_gap = 0.0
while not stop:
    record = b"%07d\n" % (i % 10_000_000)
    try:
        if os.pwrite(fd, record, i * 8) != 8:
            raise OSError(errno.EIO, "short write")
        back = os.pread(fd, 8, i * 8)
        if back != record:
            raise OSError(errno.EIO, "read back %r for %r" % (back, record))
        os.fstat(fd)
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        errors[name] = errors.get(name, 0) + 1
        if errors[name] <= 3:
            print("error", name, e.strerror or str(e), flush=True)
        time.sleep(0.01)
        continue
    i += 1
    now = time.time()
    gap = now - last
    last = now
    max_gap = max(max_gap, gap)
    if gap > 0.005:
        print("gap %.3f %.3f" % (gap * 1000, now * 1000), flush=True)
    time.sleep(0.001)
os.close(fd)
print(json.dumps({"writes": i, "errors": errors, "maxGapMs": round(max_gap * 1000, 3)}), flush=True)
