#!/usr/bin/env python3
"""Creates the local development regions, cells and edges through the admin API, then prints them.

local-east: two cells (ring 0 and ring 1); local-west: one cell (ring 1); one edge per region,
joined into <data-dir>/edges/<id> (./dev up runs them). Safe to run again: regions that exist,
cells already present for a ring and edges already joined here are left as they are.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

WANTED = {"local-east": [0, 1], "local-west": [1]}


def call(base, token, method, path, body=None):
    req = urllib.request.Request(
        f"{base}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def ensure_edges(base, token, edge_bin, edges_dir):
    """One joined edge per region, its identity in edges_dir/<id>."""
    os.makedirs(edges_dir, exist_ok=True)
    joined_here = {e["id"] for e in call(base, token, "GET", "/admin/edges")[1]
                   if e["status"] == "joined" and os.path.exists(os.path.join(edges_dir, e["id"], "agent.json"))}
    for region in WANTED:
        if any(e.startswith(f"{region}-edge-") for e in joined_here):
            continue
        status, body = call(base, token, "POST", "/admin/edges", {"region": region})
        if status != 201:
            sys.exit(f"registering an edge in {region}: {status} {body}")
        edge_id = body["edge"]["id"]
        subprocess.run([edge_bin, "--dir", os.path.join(edges_dir, edge_id), "join",
                        "--token", body["join_token"]], check=True, stdout=subprocess.DEVNULL)


def main():
    base, token_file = sys.argv[1], sys.argv[2]
    edge_bin, edges_dir = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)
            break
        except OSError:
            if time.time() > deadline:
                sys.exit("the control plane did not come up")
            time.sleep(0.3)
    token = open(token_file).read().strip()
    ops = []
    cells = call(base, token, "GET", "/admin/cells?page_size=200")[1]["items"]
    for region, rings in WANTED.items():
        status, body = call(base, token, "POST", "/admin/regions",
                            {"id": region, "cloud": "local", "location": "this machine"})
        if status not in (201, 409):
            sys.exit(f"creating region {region}: {status} {body}")
        have = [c["ring"] for c in cells if c["region"] == region and c["status"] != "decommissioned"]
        for ring in rings:
            if ring in have:
                have.remove(ring)
                continue
            status, body = call(base, token, "POST", "/admin/cells", {"region": region, "ring": ring})
            if status != 202:
                sys.exit(f"provisioning a cell in {region}: {status} {body}")
            ops.append(body["operation"]["id"])
    for op in ops:
        while True:
            o = call(base, token, "GET", f"/operations/{op}")[1]
            if o["state"] in ("fulfilled", "failed", "cancelled"):
                if o["state"] != "fulfilled":
                    print(f"cell {o['resource']['id']}: {o['state']}: {o.get('error')}", file=sys.stderr)
                break
            time.sleep(0.3)
    if edge_bin:
        ensure_edges(base, token, edge_bin, edges_dir)
    cells = call(base, token, "GET", "/admin/cells?page_size=200")[1]["items"]
    print("\nRegions and cells:")
    print(f"  {'cell':<16} {'region':<12} {'ring':<5} {'status':<15} ingress")
    for c in cells:
        if c["status"] == "decommissioned":
            continue
        print(f"  {c['id']:<16} {c['region']:<12} {c['ring']:<5} {c['status']:<15} {c.get('ingress_address', '-')}")
    edges = call(base, token, "GET", "/admin/edges")[1]
    if edges:
        print("\nEdges (every namespace endpoint's address):")
        for e in edges:
            print(f"  {e['id']:<20} {e['region']:<12} {e['status']}")
    print(f"\nConsole: {base}/console/   API: {base}/api/v1   (admin token: {token_file})\n", flush=True)


if __name__ == "__main__":
    main()
