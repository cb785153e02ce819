#!/usr/bin/env python3
"""Run a command, sample its /proc status every 5 ms, print wall time and
peak RSS / peak anonymous RSS (the memory the process allocated, without the
page cache of the mmap'd snapshot). Output goes to /dev/null."""
import subprocess, sys, time

def anon(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            d = dict(l.split(":", 1) for l in f)
        return int(d["RssAnon"].split()[0]), int(d["VmRSS"].split()[0])
    except Exception:
        return 0, 0

t0 = time.time()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pa = pr = 0
while p.poll() is None:
    a, r = anon(p.pid)
    pa, pr = max(pa, a), max(pr, r)
    time.sleep(0.005)
wall = time.time() - t0
print(f"{wall:.3f}s rss={pr/1024:.0f}MiB anon={pa/1024:.0f}MiB exit={p.returncode}")
