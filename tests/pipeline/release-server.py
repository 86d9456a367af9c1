#!/usr/bin/env python3
"""A static file server on 127.0.0.1 for release tests (tests/pipeline/install.sh, setup-tarn.sh,
act.sh): serves ROOT on an ephemeral port and prints the port. Under /cut/ it serves
ROOT/good/... with the full Content-Length but only half of each archive's bytes, then hangs
up: an interrupted download.

    python3 tests/pipeline/release-server.py ROOT > PORTFILE &
"""
import http.server
import os
import sys

root = os.path.realpath(sys.argv[1])


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass

    def do_GET(self):
        if not self.path.startswith("/cut/"):
            return super().do_GET()
        path = os.path.realpath(os.path.join(root, "good", self.path[len("/cut/"):].lstrip("/")))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            return self.send_error(404)
        body = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if path.endswith(".sha256") else body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
