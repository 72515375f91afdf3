#!/usr/bin/env python3
"""Node memory per connection that has not finished its handshake: starts a release node
(one loop), opens N connections that each send the preface and an XX first message (so the node
holds a live handshake state and has answered), and reports the growth of the node's resident set
divided by N. Nothing here completes a handshake, so no crypto library is needed.

    usage: Benchmarks/half-open-memory.py [N]     (after `swift build -c release`; N <= 18000)
"""
import os, resource, socket, subprocess, sys, tempfile, time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
node = subprocess.Popen(
    [os.path.join(root, ".build/release/switchboard"), "serve", "--listen", "127.0.0.1:0", "--threads", "1",
     "--data", tempfile.mkdtemp(), "--log-level", "warn", "--handshake-seconds", "120"],
    stdout=subprocess.PIPE, text=True)
port = int(node.stdout.readline().rsplit(":", 1)[1])

def status(field):
    for line in open(f"/proc/{node.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

try:
    first = b"SWBD\x01" + b"\x01\x00\x20" + os.urandom(32)
    rss0, anon0 = status("VmRSS"), status("RssAnon")
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(first)
        sockets.append(s)
    for s in sockets:
        header = s.recv(3)
        assert header[:1] == b"\x01", header
    time.sleep(0.5)
    rss1, anon1 = status("VmRSS"), status("RssAnon")
    print(f"half-open connections {count}  node RSS {rss0} -> {rss1} bytes  "
          f"per connection: RSS {(rss1 - rss0) / count:.0f} B, anonymous {(anon1 - anon0) / count:.0f} B")
finally:
    node.terminate()
    node.wait()
