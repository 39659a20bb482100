"""osvdi test bed: the REST steps of osbed.sh (plain urllib, no client library).

  keystone   service users, catalogue, project/user osvdi, admin's roles, application credential
  baseline   the bed's own image and flavors (osbed-tiny, osbed.small, osbed.vgpu)
  probe      boot a server, wait for ACTIVE, delete it: proves that Nova can boot
  reset      delete every server, every image and flavor not named osbed*, leftover allocations
  ready      exit 0 when Placement shows every compute host's provider tree

Settings come from the environment that osbed.sh exports (OSBED_*); the application
credential is written to OSBED_APPCRED_FILE.
"""
import calendar
import json
import os
import sys
import time
import urllib.error
import urllib.request

E = os.environ
KS = E["OSBED_KEYSTONE_URL"] + "/v3"
NOVA = E["OSBED_NOVA_URL"] + "/v2.1"
GLANCE = E["OSBED_GLANCE_URL"]
PLACEMENT = E["OSBED_PLACEMENT_URL"]
REGION = E["OSBED_REGION"]
NOVA_MV = {"OpenStack-API-Version": "compute 2.96"}
PLACEMENT_MV = {"OpenStack-API-Version": "placement 1.39"}
GPU_TRAIT = "CUSTOM_VGPU_NVIDIA_GRID_M60_0B"
# compute host -> number of nested GPU providers it reports (see osbed_fake_driver.PROFILES)
HOSTS = {"gpu-1": 2, "cpu-1": 0}


class HttpError(Exception):
    def __init__(self, method, url, code, body):
        super().__init__("%s %s -> %s %s" % (method, url, code, body[:400]))
        self.code = code


def call(method, url, body=None, token=None, headers=None, raw=None, ok_404=False):
    h = {"Accept": "application/json"}
    data = None
    if raw is not None:
        data = raw
        h["Content-Type"] = "application/octet-stream"
    elif body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["X-Auth-Token"] = token
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            b = r.read()
            return r.headers, (json.loads(b) if b else None)
    except urllib.error.HTTPError as e:
        if ok_404 and e.code == 404:
            return e.headers, None
        raise HttpError(method, url, e.code, e.read().decode(errors="replace")) from None


def token(user, password, project):
    hdr, _ = call("POST", KS + "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    return hdr["X-Subject-Token"]


def admin_token():
    return token("admin", E["OSBED_ADMIN_PASSWORD"], "admin")


def find(t, kind, name, **filters):
    q = "&".join(["name=" + name] + ["%s=%s" % kv for kv in filters.items()])
    _, r = call("GET", "%s/%s?%s" % (KS, kind, q), token=t)
    return r[kind][0]["id"] if r[kind] else None


def ensure(t, kind, name, body):
    one = kind[:-1]
    return find(t, kind, name) or call("POST", "%s/%s" % (KS, kind), {one: body}, t)[1][one]["id"]


def keystone():
    t = admin_token()
    service = ensure(t, "projects", "service", {"name": "service", "domain_id": "default"})
    osvdi = ensure(t, "projects", "osvdi", {"name": "osvdi", "domain_id": "default",
                                            "description": "osvdi test bed"})
    roles = {r: ensure(t, "roles", r, {"name": r}) for r in ("admin", "member", "reader",
                                                             "service")}
    for u in ("nova", "glance", "placement"):
        uid = ensure(t, "users", u, {"name": u, "domain_id": "default",
                                     "password": E["OSBED_SERVICE_PASSWORD"]})
        for r in ("admin", "service"):
            call("PUT", "%s/projects/%s/users/%s/roles/%s" % (KS, service, uid, roles[r]), token=t)
    user = ensure(t, "users", "osvdi", {"name": "osvdi", "domain_id": "default",
                                        "password": E["OSBED_OSVDI_PASSWORD"],
                                        "default_project_id": osvdi})
    call("PUT", "%s/projects/%s/users/%s/roles/%s" % (KS, osvdi, user, roles["member"]), token=t)
    admin = find(t, "users", "admin")
    call("PUT", "%s/projects/%s/users/%s/roles/%s" % (KS, osvdi, admin, roles["admin"]), token=t)
    for name, typ, url in (("nova", "compute", NOVA),
                           ("glance", "image", GLANCE),
                           ("placement", "placement", PLACEMENT),
                           ("neutron", "network", E["OSBED_NETWORK_URL"])):
        sid = find(t, "services", name) or call("POST", KS + "/services", {"service": {
            "name": name, "type": typ}}, t)[1]["service"]["id"]
        _, eps = call("GET", "%s/endpoints?service_id=%s" % (KS, sid), token=t)
        have = {e["interface"] for e in eps["endpoints"]}
        for iface in ("public", "internal", "admin"):
            if iface not in have:
                call("POST", KS + "/endpoints", {"endpoint": {
                    "service_id": sid, "interface": iface, "url": url, "region_id": REGION}}, t)
    appcred(user)
    print("osbed: keystone ready (project osvdi, users osvdi/admin, catalogue)")


def appcred(user):
    """An application credential of user osvdi; its secret is only shown once, so it is kept
    in OSBED_APPCRED_FILE and the credential re-created when that file is missing."""
    path = E["OSBED_APPCRED_FILE"]
    t = token("osvdi", E["OSBED_OSVDI_PASSWORD"], "osvdi")
    base = "%s/users/%s/application_credentials" % (KS, user)
    _, have = call("GET", base + "?name=osvdi-tests", token=t)
    if have["application_credentials"] and os.path.exists(path):
        return
    for c in have["application_credentials"]:
        call("DELETE", "%s/%s" % (base, c["id"]), token=t)
    _, r = call("POST", base, {"application_credential": {
        "name": "osvdi-tests", "description": "osvdi test bed"}}, t)
    c = r["application_credential"]
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%s %s\n" % (c["id"], c["secret"]))
    os.replace(path + ".tmp", path)


def nova(method, path, t, body=None, ok_404=False):
    return call(method, NOVA + path, body, t, NOVA_MV, ok_404=ok_404)[1]


def baseline():
    t = admin_token()
    _, imgs = call("GET", GLANCE + "/v2/images?name=osbed-tiny", token=t)
    if not imgs["images"]:
        _, img = call("POST", GLANCE + "/v2/images", {
            "name": "osbed-tiny", "disk_format": "raw", "container_format": "bare",
            "visibility": "public"}, t)
        call("PUT", "%s/v2/images/%s/file" % (GLANCE, img["id"]), token=t,
             raw=b"osbed tiny image\n" * 4096)
    have = {f["name"] for f in nova("GET", "/flavors?is_public=None", t)["flavors"]}
    for name, ram, vcpus, specs in (
            ("osbed.small", 512, 1, {}),
            ("osbed.vgpu", 2048, 2, {"resources1:VGPU": "1",
                                     "trait1:%s" % GPU_TRAIT: "required"})):
        if name in have:
            continue
        f = nova("POST", "/flavors", t, {"flavor": {"name": name, "ram": ram, "vcpus": vcpus,
                                                     "disk": 1}})["flavor"]
        if specs:
            nova("POST", "/flavors/%s/os-extra_specs" % f["id"], t, {"extra_specs": specs})
    # One availability zone per host (host aggregates osbed-gpu, osbed-cpu). Nova filters zones
    # in Placement, which knows only zones that are aggregates: the default zone "nova" would
    # not keep a server off gpu-1, hence a named zone for cpu-1 too.
    aggs = {a["name"]: a for a in nova("GET", "/os-aggregates", t)["aggregates"]}
    for name, zone, host in (("osbed-gpu", "az-gpu", "gpu-1"), ("osbed-cpu", "az-cpu", "cpu-1")):
        agg = aggs.get(name) or nova("POST", "/os-aggregates", t, {"aggregate": {
            "name": name, "availability_zone": zone}})["aggregate"]
        if host not in agg.get("hosts", []):
            nova("POST", "/os-aggregates/%s/action" % agg["id"], t, {"add_host": {"host": host}})
    print("osbed: image osbed-tiny, flavors osbed.small and osbed.vgpu, zones az-gpu and "
          "az-cpu present")


def wait_gone(t, ids, timeout):
    deadline = time.monotonic() + timeout
    while ids and time.monotonic() < deadline:
        ids = [i for i in ids if nova("GET", "/servers/" + i, t, ok_404=True)]
        time.sleep(0.3)
    return ids


def probe():
    t = admin_token()
    _, imgs = call("GET", GLANCE + "/v2/images?name=osbed-tiny", token=t)
    flavor = [f["id"] for f in nova("GET", "/flavors", t)["flavors"]
              if f["name"] == "osbed.small"][0]
    start = time.monotonic()
    s = nova("POST", "/servers", t, {"server": {
        "name": "osbed-probe", "imageRef": imgs["images"][0]["id"], "flavorRef": flavor,
        "networks": "none"}})["server"]
    status = "BUILD"
    while time.monotonic() - start < 60:
        srv = nova("GET", "/servers/" + s["id"], t)["server"]
        status = srv["status"]
        if status in ("ACTIVE", "ERROR"):
            break
        time.sleep(0.3)
    booted = time.monotonic() - start
    nova("DELETE", "/servers/" + s["id"], t, ok_404=True)
    left = wait_gone(t, [s["id"]], 30)
    if status != "ACTIVE":
        sys.exit("osbed: probe server did not boot (status %s): %s" % (
            status, srv.get("fault", {}).get("message", "no fault recorded")))
    if left:
        sys.exit("osbed: probe server %s was not deleted within 30 s" % s["id"])
    print("osbed: probe server ACTIVE in %.1f s and deleted" % booted)


def reset():
    t = admin_token()
    servers = nova("GET", "/servers?all_tenants=1", t)["servers"]
    for s in servers:
        nova("DELETE", "/servers/" + s["id"], t, ok_404=True)
    left = wait_gone(t, [s["id"] for s in servers], 60)
    if left:
        sys.exit("osbed: servers not deleted within 60 s: %s" % " ".join(left))
    _, imgs = call("GET", GLANCE + "/v2/images?limit=1000", token=t)
    gone_images = [i for i in imgs["images"] if not (i.get("name") or "").startswith("osbed")]
    for i in gone_images:
        if i.get("protected"):
            call("PATCH", "%s/v2/images/%s" % (GLANCE, i["id"]), token=t,
                 headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
                 raw=json.dumps([{"op": "replace", "path": "/protected",
                                  "value": False}]).encode())
        call("DELETE", "%s/v2/images/%s" % (GLANCE, i["id"]), token=t, ok_404=True)
    flavors = [f for f in nova("GET", "/flavors?is_public=None", t)["flavors"]
               if not f["name"].startswith("osbed")]
    for f in flavors:
        nova("DELETE", "/flavors/" + f["id"], t, ok_404=True)
    # Allocations whose consumer is no longer a server (e.g. made by osvdi directly).
    ph = dict(PLACEMENT_MV)
    _, rps = call("GET", PLACEMENT + "/resource_providers", token=t, headers=ph)
    consumers = set()
    for rp in rps["resource_providers"]:
        _, a = call("GET", "%s/resource_providers/%s/allocations" % (PLACEMENT, rp["uuid"]),
                    token=t, headers=ph)
        consumers.update(a["allocations"])
    for c in consumers:
        call("DELETE", "%s/allocations/%s" % (PLACEMENT, c), token=t, headers=ph, ok_404=True)
    print("osbed: reset: %d server(s), %d image(s), %d flavor(s), %d leftover allocation(s) "
          "deleted" % (len(servers), len(gone_images), len(flavors), len(consumers)))


def ready():
    """Every host of HOSTS is up in Nova and has its provider tree (root and GPU children)
    in Placement."""
    t = admin_token()
    # A heartbeat older than this start of the compute may be from before a restart.
    since = float(E.get("OSBED_COMPUTE_SINCE", "0"))
    up = {s["host"] for s in nova("GET", "/os-services?binary=nova-compute", t)["services"]
          if s["state"] == "up" and s["status"] == "enabled" and s["updated_at"]
          and calendar.timegm(time.strptime(s["updated_at"][:19], "%Y-%m-%dT%H:%M:%S")) >= since}
    for host in HOSTS:
        if host not in up:
            print(host)  # the first host not ready, for osbed.sh's error message
            sys.exit(1)
    _, rps = call("GET", PLACEMENT + "/resource_providers", token=t, headers=PLACEMENT_MV)
    names = [rp["name"] for rp in rps["resource_providers"]]
    for host, gpus in HOSTS.items():
        if host not in names or sum(n.startswith(host + "_pci_") for n in names) < gpus:
            print(host)
            sys.exit(1)


if __name__ == "__main__":
    cmds = {"keystone": keystone, "baseline": baseline, "probe": probe, "reset": reset,
            "ready": ready}
    if len(sys.argv) != 2 or sys.argv[1] not in cmds:
        sys.exit("usage: osbed_api.py " + "|".join(cmds))
    try:
        cmds[sys.argv[1]]()
    except (HttpError, urllib.error.URLError, OSError) as e:
        sys.exit("osbed: %s: %s" % (sys.argv[1], e))
