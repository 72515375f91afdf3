#!/usr/bin/env python3
"""Node memory per idle connection: starts a release node (2 loops), opens N connections from
this process, does one echo round trip on each, and reports the growth of the node's resident
set (VmRSS and RssAnon from /proc) divided by N.

    usage: Benchmarks/idle-memory.py [N]     (after `swift build -c release`; N <= 18000 here)
"""
import os, resource, socket, subprocess, sys, tempfile, time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 15000
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
node = subprocess.Popen(
    [os.path.join(root, ".build/release/switchboard"), "serve", "--listen", "127.0.0.1:0", "--threads", "2",
     "--data", tempfile.mkdtemp(), "--log-level", "warn"], stdout=subprocess.PIPE, text=True)
port = int(node.stdout.readline().rsplit(":", 1)[1])

def status(field):
    for line in open(f"/proc/{node.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

try:
    rss0, anon0 = status("VmRSS"), status("RssAnon")
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for s in sockets:
        s.sendall(b"x")
    for s in sockets:
        assert s.recv(1) == b"x"
    time.sleep(0.5)
    rss1, anon1 = status("VmRSS"), status("RssAnon")
    print(f"connections {count}  node RSS {rss0} -> {rss1} bytes  "
          f"per connection: RSS {(rss1 - rss0) / count:.0f} B, anonymous {(anon1 - anon0) / count:.0f} B")
finally:
    node.terminate()
    node.wait()
