"""osvdi test bed: checks that the bed does what osvdi's tests rely on, through the real APIs.

Run with the venv's python after `eval "$(osbed.sh env)"` (osbed.sh selftest does both).
Prints one line per check and 'N passed, N failed'; exit status 1 when a check failed.
Leaves nothing behind (its servers are deleted; flavors and images are the bed's own).
"""
import base64
import concurrent.futures
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

E = os.environ
KS = E["OS_AUTH_URL"]
MV = {"OpenStack-API-Version": "compute 2.96"}
PMV = {"OpenStack-API-Version": "placement 1.39"}
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""),
          flush=True)
    return ok


def call(method, url, body=None, token=None, headers=None):
    h = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["X-Auth-Token"] = token
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            b = r.read()
            return r.status, r.headers, (json.loads(b) if b else None)
    except urllib.error.HTTPError as e:
        b = e.read()
        try:
            return e.code, e.headers, json.loads(b)
        except ValueError:
            return e.code, e.headers, b.decode(errors="replace")


def auth(identity, scope=None):
    body = {"auth": {"identity": identity}}
    if scope:
        body["auth"]["scope"] = scope
    code, hdr, r = call("POST", KS + "/auth/tokens", body)
    if code != 201:
        raise SystemExit("auth failed: %s %s" % (code, r))
    return hdr["X-Subject-Token"], r["token"]


def password(user, pw, project):
    return auth({"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": E["OS_USER_DOMAIN_NAME"]}, "password": pw}}},
        {"project": {"name": project, "domain": {"name": E["OS_PROJECT_DOMAIN_NAME"]}}})


def endpoint(catalog, typ):
    for s in catalog:
        if s["type"] == typ:
            for e in s["endpoints"]:
                if e["interface"] == "public" and e["region_id"] == E["OS_REGION_NAME"]:
                    return e["url"].rstrip("/")
    raise SystemExit("no %s endpoint in the catalogue" % typ)


def wait_status(nova, t, sid, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        code, _, r = call("GET", "%s/servers/%s" % (nova, sid), token=t, headers=MV)
        if code == 404:
            return "DELETED", None
        s = r["server"]
        if s["status"] in (want, "ERROR") and not s.get("OS-EXT-STS:task_state"):
            return s["status"], s
        if time.monotonic() > deadline:
            return s["status"], s
        time.sleep(0.3)


def action(nova, t, sid, body):
    code, _, r = call("POST", "%s/servers/%s/action" % (nova, sid), body, t, MV)
    return code, r


class WebSocket:
    """A minimal WebSocket client (binary frames) for a console URL of Nova's proxies."""

    def __init__(self, url):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        # novnc: vnc_auto.html?path=%3Ftoken%3D...; spice-html5: spice_auto.html?token=...
        path = q.get("path", [None])[0] or "?token=" + q["token"][0]
        if not path.startswith("/"):
            path = "/" + path
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
                           % (path, u.hostname, u.port, key)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("proxy closed during the WebSocket handshake: %r" % buf)
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError("no WebSocket upgrade: %r" % head[:200])
        self.pending = bytearray(rest)
        self.data = bytearray()

    def _exact(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("closed")
            self.pending.extend(chunk)
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def read(self, n):
        """n payload bytes, across frames."""
        while len(self.data) < n:
            b0, b1 = self._exact(2)
            ln = b1 & 0x7F
            if ln == 126:
                ln = struct.unpack(">H", self._exact(2))[0]
            elif ln == 127:
                ln = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(ln)
            if b0 & 0x0F == 8:
                raise OSError("WebSocket closed: %r" % payload)
            self.data.extend(payload)
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def send(self, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x82, 0x80 | len(payload)]) + mask + masked)

    def close(self):
        self.sock.close()


def rfb_handshake(url):
    """RFB through novncproxy up to ServerInit: (version, width, height, name)."""
    ws = WebSocket(url)
    version = ws.read(12)
    ws.send(version)
    types = ws.read(ws.read(1)[0])
    if 1 not in types:
        raise OSError("no 'None' security type offered: %r" % types)
    ws.send(b"\x01")
    if ws.read(4) != b"\0\0\0\0":
        raise OSError("security result not OK")
    ws.send(b"\x01")  # ClientInit, shared
    w, h = struct.unpack(">HH", ws.read(4))
    ws.read(16)  # pixel format
    name = ws.read(struct.unpack(">I", ws.read(4))[0])
    ws.close()
    return version.decode().strip(), w, h, name.decode(errors="replace")


def spice_link(url):
    """SPICE through spicehtml5proxy: SpiceLinkMess for the main channel, and the server's
    SpiceLinkReply header: (major, minor, error)."""
    ws = WebSocket(url)
    mess = struct.pack("<IBBIII", 0, 1, 0, 0, 0, 18)  # connection 0, main channel, no caps
    ws.send(struct.pack("<4sIII", b"REDQ", 2, 2, len(mess)) + mess)
    magic, major, minor, size = struct.unpack("<4sIII", ws.read(16))
    if magic != b"REDQ":
        raise OSError("not a SPICE link reply: %r" % magic)
    error = struct.unpack("<I", ws.read(4))[0]
    ws.close()
    return major, minor, error


def main():
    t, tok = password(E["OS_USERNAME"], E["OS_PASSWORD"], E["OS_PROJECT_NAME"])
    roles = sorted(r["name"] for r in tok["roles"])
    check("user osvdi gets a project token without admin", "admin" not in roles, str(roles))
    nova = endpoint(tok["catalog"], "compute")
    glance = endpoint(tok["catalog"], "image")
    placement = endpoint(tok["catalog"], "placement")
    at, atok = auth({"methods": ["application_credential"], "application_credential": {
        "id": E["OSVDI_OS_APP_CRED_ID"], "secret": E["OSVDI_OS_APP_CRED_SECRET"]}}, scope=None)
    check("application credential authenticates into project osvdi",
          atok["project"]["name"] == "osvdi")
    adm, admtok = password(E["OSVDI_OS_ADMIN_USERNAME"], E["OSVDI_OS_ADMIN_PASSWORD"], "osvdi")
    check("admin has the admin role on project osvdi",
          "admin" in [r["name"] for r in admtok["roles"]])

    # Placement: nested GPU providers with VGPU and traits.
    code, _, rps = call("GET", placement + "/resource_providers", token=adm, headers=PMV)
    names = {rp["name"]: rp for rp in rps["resource_providers"]}
    gpu = [n for n in names if n.startswith("gpu-1_pci_")]
    ok = len(gpu) == 2 and all(names[n]["parent_provider_uuid"] == names["gpu-1"]["uuid"]
                               for n in gpu) and "cpu-1" in names
    check("placement: gpu-1 with 2 nested GPU providers, cpu-1", ok, ", ".join(sorted(names)))
    traits = {}
    for n in gpu:
        _, _, tr = call("GET", "%s/resource_providers/%s/traits" % (placement, names[n]["uuid"]),
                        token=adm, headers=PMV)
        _, _, inv = call("GET", "%s/resource_providers/%s/inventories"
                         % (placement, names[n]["uuid"]), token=adm, headers=PMV)
        traits[n] = [x for x in tr["traits"] if x.startswith("CUSTOM_VGPU")]
        check("placement: %s has VGPU 4 and one vGPU type trait" % n,
              inv["inventories"]["VGPU"]["total"] == 4 and len(traits[n]) == 1, str(traits[n]))

    # Boot a vGPU server as user osvdi.
    _, _, imgs = call("GET", glance + "/v2/images?name=osbed-tiny", token=t)
    image = imgs["images"][0]["id"]
    _, _, fl = call("GET", nova + "/flavors", token=t, headers=MV)
    flavor = {f["name"]: f["id"] for f in fl["flavors"]}

    def boot(name, fname, **extra):
        body = {"server": {"name": name, "imageRef": image, "flavorRef": flavor[fname],
                           "networks": "none", "metadata": {"osvdi": "selftest"}}}
        body["server"].update(extra)
        code, _, r = call("POST", nova + "/servers", body, t, MV)
        if code != 202:
            raise SystemExit("boot failed: %s %s" % (code, r))
        return r["server"]["id"]

    created = []
    try:
        t0 = time.monotonic()
        sid = boot("selftest-vgpu", "osbed.vgpu")
        created.append(sid)
        st, s = wait_status(nova, t, sid, "ACTIVE")
        check("vGPU server ACTIVE (%.1f s)" % (time.monotonic() - t0), st == "ACTIVE", st)
        _, _, al = call("GET", "%s/allocations/%s" % (placement, sid), token=adm, headers=PMV)
        vg = [rp for rp, a in al["allocations"].items() if "VGPU" in a["resources"]]
        rpname = {rp["uuid"]: n for n, rp in names.items()}
        check("VGPU allocated on the GPU with CUSTOM_VGPU_NVIDIA_GRID_M60_0B",
              len(vg) == 1 and traits.get(rpname.get(vg[0])) == ["CUSTOM_VGPU_NVIDIA_GRID_M60_0B"],
              str([rpname.get(x) for x in vg]))

        # Console through novncproxy: a real RFB handshake with QEMU's VNC server.
        code, _, r = call("POST", "%s/servers/%s/remote-consoles" % (nova, sid),
                          {"remote_console": {"protocol": "vnc", "type": "novnc"}}, t, MV)
        url = (r or {}).get("remote_console", {}).get("url", "") if code == 200 else ""
        check("remote-consoles vnc returns a URL", url.startswith("http://"), str(r)[:200])
        try:
            version, w, h, name = rfb_handshake(url)
            check("RFB through novncproxy: %s, %dx%d, %r" % (version, w, h, name),
                  version.startswith("RFB 003.") and w > 0 and h > 0)
        except OSError as e:
            check("RFB through novncproxy", False, str(e))
        code, _, r = call("POST", "%s/servers/%s/remote-consoles" % (nova, sid),
                          {"remote_console": {"protocol": "spice", "type": "spice-html5"}}, t,
                          MV)
        url = (r or {}).get("remote_console", {}).get("url", "") if code == 200 else ""
        check("remote-consoles spice returns a URL", url.startswith("http://"), str(r)[:200])
        try:
            major, minor, error = spice_link(url)
            check("SPICE through spicehtml5proxy: link reply %d.%d, error %d"
                  % (major, minor, error), major == 2 and error == 0)
        except OSError as e:
            check("SPICE through spicehtml5proxy", False, str(e))

        for act, want, back, want2 in (("suspend", "SUSPENDED", "resume", "ACTIVE"),
                                       ("os-stop", "SHUTOFF", "os-start", "ACTIVE"),
                                       ("shelve", "SHELVED_OFFLOADED", "unshelve", "ACTIVE")):
            code, r = action(nova, t, sid, {act: None})
            st, s = wait_status(nova, t, sid, want)
            extra = ""
            if want == "SHELVED_OFFLOADED":
                _, _, al = call("GET", "%s/allocations/%s" % (placement, sid), token=adm,
                                headers=PMV)
                extra = " (allocations while offloaded: %d)" % len(al["allocations"])
                ok = st == want and not al["allocations"]
            else:
                ok = st == want
            check("%s -> %s%s" % (act, want, extra), ok, "%s %s" % (code, st))
            code, r = action(nova, t, sid, {back: None})
            st, s = wait_status(nova, t, sid, want2)
            check("%s -> %s" % (back, want2), st == want2, "%s %s %s" % (code, st, r or ""))

        if E.get("OSBED_SELFTEST_RESTART") == "1":
            host = s.get("OS-EXT-SRV-ATTR:host") if s else None
            subprocess.run([os.path.join(os.path.dirname(__file__), "osbed.sh"),
                            "restart-compute"], check=True)
            st, s = wait_status(nova, t, sid, "ACTIVE")
            time.sleep(2)
            st, s = wait_status(nova, t, sid, "ACTIVE")
            check("server still ACTIVE after nova-compute restart", st == "ACTIVE", str(host))

        # Capacity: 4 units of M60_0B in all, one in use. Four more asked for at once (a real
        # race in the scheduler and Placement): exactly three fit, one gets "No valid host".
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            more = list(pool.map(lambda i: boot("selftest-fill-%d" % i, "osbed.vgpu"),
                                 range(4)))
        created += more
        sts = sorted(wait_status(nova, t, x, "ACTIVE")[0] for x in more)
        faults = []
        for x in more:
            _, _, r = call("GET", "%s/servers/%s" % (nova, x), token=t, headers=MV)
            faults.append(r["server"].get("fault", {}).get("message", ""))
        check("capacity: 4 concurrent vGPU boots on 3 free units: 3 ACTIVE, 1 'No valid host'",
              sts == ["ACTIVE"] * 3 + ["ERROR"]
              and sum("No valid host" in f for f in faults) == 1, str(sts) + str(faults))

        # The admin's host hints (microversion 2.74): host, and hypervisor_hostname.
        for key, host, fname in (("host", "cpu-1", "osbed.small"),
                                 ("hypervisor_hostname", "gpu-1", "osbed.small")):
            code, _, r = call("POST", nova + "/servers", {"server": {
                "name": "selftest-" + key, "imageRef": image, "flavorRef": flavor[fname],
                "networks": "none", key: host}}, adm, {"OpenStack-API-Version": "compute 2.74"})
            hid = r["server"]["id"] if code == 202 else None
            if hid:
                created.append(hid)
                st, s = wait_status(nova, adm, hid, "ACTIVE")
                check("admin hint %s=%s places the server there" % (key, host),
                      st == "ACTIVE" and s.get("OS-EXT-SRV-ATTR:host") == host, st)
            else:
                check("admin hint %s" % key, False, "%s %s" % (code, r))
        # Availability zones: az-gpu is gpu-1, az-cpu is cpu-1; any user may ask for one.
        for az, host in (("az-gpu", "gpu-1"), ("az-cpu", "cpu-1")):
            zid = boot("selftest-az-" + az, "osbed.small", availability_zone=az)
            created.append(zid)
            st, s = wait_status(nova, adm, zid, "ACTIVE")
            check("availability zone %s places the server on %s" % (az, host),
                  st == "ACTIVE" and s.get("OS-EXT-SRV-ATTR:host") == host
                  and s.get("OS-EXT-AZ:availability_zone") == az,
                  "%s on %s" % (st, s.get("OS-EXT-SRV-ATTR:host") if s else None))
        # A user may not give the hint.
        code, _, r = call("POST", nova + "/servers", {"server": {
            "name": "selftest-nohint", "imageRef": image, "flavorRef": flavor["osbed.small"],
            "networks": "none", "host": "cpu-1"}}, t, {"OpenStack-API-Version": "compute 2.74"})
        if code == 202:
            created.append(r["server"]["id"])
        check("user osvdi may not pass a host hint (403)", code == 403, str(code))
    finally:
        for x in created:
            call("DELETE", "%s/servers/%s" % (nova, x), token=adm, headers=MV)
        for x in created:
            wait_status(nova, adm, x, "DELETED")
    _, _, al = call("GET", "%s/allocations/%s" % (placement, created[0]), token=adm, headers=PMV)
    check("delete frees the Placement allocation", al["allocations"] == {})
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
