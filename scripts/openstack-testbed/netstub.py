"""osvdi test bed: a stand-in for the Networking (Neutron) API on 127.0.0.1.

Nova calls the network service even for servers booted with `"networks": "none"` (security
group lookup in nova-api, port clean-up in nova-compute). This answers every list call with an
empty list and everything else with 404, which is all Nova needs for such servers. Servers that
ask for a real network are therefore refused by Nova; the test bed has no networking.

Usage: python3 netstub.py PORT
"""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "":
            return self._send(200, {"versions": [{
                "id": "v2.0", "status": "CURRENT",
                "links": [{"rel": "self", "href": "http://%s/v2.0/" % self.headers["Host"]}]}]})
        if path == "/v2.0/extensions":
            return self._send(200, {"extensions": []})
        m = re.match(r"^/v2\.0/([a-z_-]+)(?:\.json)?$", path)
        if m:
            return self._send(200, {m.group(1).replace("-", "_"): []})
        self._send(404, {"NeutronError": {"type": "NotFound", "message": path, "detail": ""}})

    def do_DELETE(self):
        self._drain()
        self._send(404, {"NeutronError": {"type": "NotFound", "message": self.path,
                                          "detail": ""}})

    do_POST = do_PUT = do_DELETE

    def log_message(self, fmt, *args):
        sys.stderr.write("netstub %s\n" % (fmt % args))


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
