#!/usr/bin/env python3
"""osvdi's placement against a real OpenStack Placement, on the same inventory, in one run.

Starts OpenStack Placement (openstack-placement from PyPI, SQLite, auth_strategy = noauth2,
gunicorn with one sync worker) on 127.0.0.1, has `osvdi bench placement` generate a fleet
(1,000 hosts by default: VCPU and MEMORY_MB, one in four hosts with two GPUs as nested
providers with VGPU inventory and a CUSTOM_VGPU_* trait each, part of everything already in
use), loads that very fleet into Placement (providers, inventories, traits, one consumer per
host holding the usage), then times the same two queries on both sides and prints one table:

  - plain desktop: 4 vCPU, 8 GiB;
  - vGPU desktop: 4 vCPU, 8 GiB and one VGPU on a GPU with trait CUSTOM_VGPU_NVIDIA_35.

Placement is timed over HTTP (GET /allocation_candidates, as Nova's scheduler asks it);
osvdi in process (osvdi_scheduler::place picks the best host, ::rank orders every fitting
one). Both sides must find the same hosts that fit: the script checks it.

Not part of CI. Usage, from the repository root:

  python3 bench/placement-vs-openstack.py [--hosts 1000] [--queries 200] [--osvdi PATH]

First use creates bench/.venv and installs openstack-placement into it (needs PyPI); the
osvdi binary defaults to target/release/osvdi (built with cargo if missing).
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv")
PLACEMENT_VERSION = "16.0.0"
PINS = [f"openstack-placement=={PLACEMENT_VERSION}", "gunicorn==27.0.1"]
MICROVERSION = "placement 1.39"  # consumer_type (1.38) and everything before it


def venv_bin(name):
    return os.path.join(VENV, "bin", name)


def ensure_venv():
    if os.path.exists(venv_bin("gunicorn")) and os.path.exists(venv_bin("placement-manage")):
        return
    print("creating bench/.venv with", " ".join(PINS), file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([venv_bin("pip"), "install", "-q", *PINS], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Placement:
    """A Placement API on loopback, spoken to with one connection per request (gunicorn's
    sync worker closes each)."""

    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {
            "X-Auth-Token": "admin",
            "OpenStack-API-Version": MICROVERSION,
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        if resp.status not in ok:
            raise RuntimeError(f"{method} {path}: {resp.status} {text[:400]!r}")
        return json.loads(text) if text else None


def start_placement(workdir):
    conf = os.path.join(workdir, "placement.conf")
    with open(conf, "w") as f:
        f.write(
            "[api]\nauth_strategy = noauth2\n"
            f"[placement_database]\nconnection = sqlite:///{workdir}/placement.sqlite\n"
        )
    subprocess.run(
        [venv_bin("placement-manage"), "--config-file", conf, "db", "sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    log = open(os.path.join(workdir, "placement.log"), "w")
    env = dict(os.environ, OS_PLACEMENT_CONFIG_DIR=workdir)
    # One sync worker: SQLite serialises writes anyway (threads lose allocations).
    proc = subprocess.Popen(
        [venv_bin("gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
         "--chdir", workdir, "placement.wsgi.api:application"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    api = Placement(port)
    for _ in range(300):
        try:
            api.call("GET", "/")
            return proc, api
        except (OSError, RuntimeError):
            if proc.poll() is not None:
                raise RuntimeError("placement exited; see " + log.name)
            time.sleep(0.1)
    raise RuntimeError("placement did not answer")


def load(api, fleet):
    """The fleet as Nova would report it: a root provider per host, a child per GPU."""
    traits = sorted({g["trait"] for h in fleet["hosts"] for g in h["gpus"]})
    for t in traits:
        api.call("PUT", f"/traits/{t}")
    for h in fleet["hosts"]:
        root = str(uuid.uuid4())
        api.call("POST", "/resource_providers", {"name": h["name"], "uuid": root})
        api.call("PUT", f"/resource_providers/{root}/inventories", {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": h["vcpus"]},
                            "MEMORY_MB": {"total": h["memory_mb"]}},
        })
        allocations = {}
        used = {k: v for k, v in (("VCPU", h["used_vcpus"]),
                                   ("MEMORY_MB", h["used_memory_mb"])) if v > 0}
        if used:
            allocations[root] = {"resources": used}
        for i, g in enumerate(h["gpus"]):
            child = str(uuid.uuid4())
            api.call("POST", "/resource_providers", {
                "name": f"{h['name']}_pgpu{i}", "uuid": child, "parent_provider_uuid": root})
            api.call("PUT", f"/resource_providers/{child}/inventories", {
                "resource_provider_generation": 0,
                "inventories": {"VGPU": {"total": g["total"]}},
            })
            api.call("PUT", f"/resource_providers/{child}/traits", {
                "resource_provider_generation": 1, "traits": [g["trait"]]})
            if g["used"] > 0:
                allocations[child] = {"resources": {"VGPU": g["used"]}}
        if allocations:
            api.call("PUT", f"/allocations/{uuid.uuid4()}", {
                "allocations": allocations, "project_id": "bench", "user_id": "bench",
                "consumer_generation": None, "consumer_type": "INSTANCE"})


def candidate_hosts(answer):
    """The hosts (root providers) in an allocation_candidates answer."""
    summaries = answer["provider_summaries"]
    roots = set()
    for req in answer["allocation_requests"]:
        for rp in req["allocations"]:
            roots.add(summaries[rp].get("root_provider_uuid", rp))
    return len(roots)


def time_queries(api, path, n):
    api.call("GET", path)  # warm-up
    times = []
    answer = None
    for _ in range(n):
        t = time.perf_counter()
        answer = api.call("GET", path)
        times.append(time.perf_counter() - t)
    return times, candidate_hosts(answer)


def pct(values, p):
    s = sorted(values)
    k = max(1, -(-p * len(s) // 100))
    return s[k - 1]


def fmt(seconds):
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200, help="timed queries per kind and side")
    ap.add_argument("--osvdi", default=os.path.join(ROOT, "target", "release", "osvdi"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    ensure_venv()
    if not os.path.exists(args.osvdi):
        subprocess.run(["cargo", "build", "--release", "-p", "osvdi"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="osvdi-placement-bench-")
    proc = None
    try:
        inventory = os.path.join(work, "fleet.json")
        out = subprocess.run(
            [args.osvdi, "bench", "placement", "--hosts", str(args.hosts),
             "--queries", str(max(args.queries, 1000)), "--inventory-out", inventory, "--json"],
            check=True, capture_output=True, text=True)
        ours = {r["query"]: r for r in json.loads(out.stdout)["results"]}
        with open(inventory) as f:
            fleet = json.load(f)
        proc, api = start_placement(work)
        t = time.perf_counter()
        load(api, fleet)
        load_s = time.perf_counter() - t
        queries = [
            ("plain desktop 4 vCPU / 8 GiB",
             "/allocation_candidates?resources=VCPU:4,MEMORY_MB:8192&limit=1000"),
            ("vGPU desktop 4 vCPU / 8 GiB + 1 nvidia-35",
             "/allocation_candidates?resources=VCPU:4,MEMORY_MB:8192"
             "&resources1=VGPU:1&required1=CUSTOM_VGPU_NVIDIA_35&limit=1000"),
        ]
        gpu_hosts = sum(1 for h in fleet["hosts"] if h["gpus"])
        build = "release" if "/release/" in args.osvdi else "debug" if "/debug/" in args.osvdi else "given"
        print(f"Placement {PLACEMENT_VERSION} (SQLite, noauth2, gunicorn 1 sync worker, HTTP on "
              f"127.0.0.1) vs osvdi-scheduler (in process, {build} build); the same "
              f"{len(fleet['hosts'])} hosts ({gpu_hosts} with 2 GPUs as nested VGPU providers), "
              f"loaded into Placement in {load_s:.0f} s; {args.queries} queries per kind to "
              f"Placement, {max(args.queries, 1000)} to osvdi.")
        print()
        print("| query | hosts that fit (Placement / osvdi) | Placement p50 | Placement p95 "
              "| osvdi place p50 | osvdi place p95 | osvdi rank all p50 | osvdi rank all p95 |")
        print("|---|---|---|---|---|---|---|---|")
        mismatch = False
        for name, path in queries:
            times, hosts = time_queries(api, path, args.queries)
            o = ours[name]
            mismatch |= hosts != o["candidates"]
            print(f"| {name} | {hosts} / {o['candidates']} | {fmt(pct(times, 50))} "
                  f"| {fmt(pct(times, 95))} | {fmt(o['place_p50_us'] / 1e6)} "
                  f"| {fmt(o['place_p95_us'] / 1e6)} | {fmt(o['rank_p50_us'] / 1e6)} "
                  f"| {fmt(o['rank_p95_us'] / 1e6)} |")
        if mismatch:
            print("\nWARNING: the two sides disagree on which hosts fit", file=sys.stderr)
            return 1
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if args.keep:
            print("work directory:", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
