#!/usr/bin/env python3
# Writes halo.yaml from haproxy.cfg: the same rule set, line for line, in
# halo's YAML (each HAProxy line a single-quoted string). Run it after
# changing haproxy.cfg; both files are checked in.
import collections

lines = open("haproxy.cfg").read().split("\n")
sec = name = None
acls = collections.OrderedDict()
hreq, hres, useb, default = [], [], [], None
caps, decls = [], []
backends = collections.OrderedDict()
for l in lines:
    s = l.strip()
    if not s or s.startswith("#"):
        continue
    if not l.startswith(" "):
        parts = s.split()
        sec, name = parts[0], (parts[1] if len(parts) > 1 else None)
        if sec == "backend":
            backends[name] = {"req": [], "res": [], "srv": []}
        continue
    kw, _, rest = s.partition(" ")
    if sec == "frontend":
        if kw == "acl":
            n, _, d = rest.partition(" ")
            acls.setdefault(n, []).append(d)
        elif kw == "http-request":
            hreq.append(rest)
        elif kw == "http-response":
            hres.append(rest)
        elif kw == "capture":
            caps.append(rest)
        elif kw == "declare":
            decls.append(rest)
        elif kw == "use_backend":
            useb.append(rest)
        elif kw == "default_backend":
            default = rest
    elif sec == "backend":
        b = backends[name]
        if kw == "http-request":
            b["req"].append(rest)
        elif kw == "http-response":
            b["res"].append(rest)
        elif kw == "server":
            n, addr = rest.split()[:2]
            b["srv"].append((n, addr))


def q(s):
    return "'" + s.replace("'", "''") + "'"


out = ["# The rule set of the differential test (rules_test.go) in halo's YAML,",
       "# written from haproxy.cfg beside it by gen_halo_yaml.py: the same lines",
       "# in the same order.",
       "defaults:", "  mode: http", "  timeout: {connect: 2s, client: 5s, server: 5s, http-request: 5s}",
       "frontends:", "  public:", "    bind: ['{{fe}}']", "    acl:"]
for n, ds in acls.items():
    if len(ds) == 1:
        out.append(f"      {n}: {q(ds[0])}")
    else:
        out.append(f"      {n}:")
        out += [f"        - {q(d)}" for d in ds]
# Capture slots are numbered in the file's order: capture and declare
# come before http-request, as in haproxy.cfg.
if caps:
    out.append("    capture:")
    out += [f"      - {q(r)}" for r in caps]
if decls:
    out.append("    declare:")
    out += [f"      - {q(r)}" for r in decls]
out.append("    http-request:")
out += [f"      - {q(r)}" for r in hreq]
out.append("    use_backend:")
out += [f"      - {q(r)}" for r in useb]
out.append(f"    default_backend: {default}")
out.append("    http-response:")
out += [f"      - {q(r)}" for r in hres]
out.append("backends:")
for n, b in backends.items():
    out.append(f"  {n}:")
    for key in ("req", "res"):
        if b[key]:
            out.append("    http-request:" if key == "req" else "    http-response:")
            out += [f"      - {q(r)}" for r in b[key]]
    out.append("    servers:")
    out += [f"      - {{name: {sn}, address: '{addr}'}}" for sn, addr in b["srv"]]
open("halo.yaml", "w").write("\n".join(out) + "\n")
