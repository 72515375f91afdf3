#!/usr/bin/env python3
"""A real HTTP push gateway for tests: Python's http.server on 127.0.0.1. Prints `PORT n`, then
one line per POST: `STATUS path body`. The first FAIL_FIRST requests are answered 500.

    usage: push_receiver.py [FAIL_FIRST]
"""
import http.server, signal, sys

# The test runner may start us with SIGTERM blocked; take the default back.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

fail_first = int(sys.argv[1]) if len(sys.argv) > 1 else 0
seen = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        seen += 1
        status = 500 if seen <= fail_first else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        print(status, self.path, body, flush=True)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
