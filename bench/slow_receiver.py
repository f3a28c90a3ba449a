"""A slow webhook receiver for bench/run.sh's `hooks` scenario: answers every POST with
204 after DELAY seconds (the first argument is the port, the second the delay), on a
thread per request, and writes how many it took in to COUNT_FILE when it stops."""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, delay = int(sys.argv[1]), float(sys.argv[2])
count_file = os.environ.get("COUNT_FILE", "/dev/null")
received = 0
lock = threading.Lock()


class Slow(BaseHTTPRequestHandler):
    def do_POST(self):
        global received
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(delay)
        with lock:
            received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    with open(count_file, "w") as out:
        out.write(f"{received}\n")
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer(("127.0.0.1", port), Slow).serve_forever()
