#!/usr/bin/env python3
# Writes halo.yaml from haproxy.cfg: the same rule set, line for line, in
# halo's YAML (each HAProxy line a single-quoted string). Run it after
# changing haproxy.cfg; both files are checked in. A keyword it does not
# know stops it: every line of haproxy.cfg must have its YAML twin.
import collections
import sys

# Keywords whose lines become a YAML list under the same key (the keyword
# itself dropped), and the one-value keywords.
LISTS = {"http-request", "http-response", "use_backend", "capture", "declare", "monitor",
         "http-error", "tcp-request", "stick"}
SCALARS = {"default_backend", "monitor-uri", "stick-table"}
MAPS = {"errorfile"}  # errorfile CODE FILE: a mapping of codes

lines = open("haproxy.cfg").read().split("\n")
sec = name = None
frontend = collections.OrderedDict()
acls = collections.OrderedDict()
options = collections.OrderedDict()
backends = collections.OrderedDict()
userlists = collections.OrderedDict()
for n, l in enumerate(lines, 1):
    s = l.strip()
    if not s or s.startswith("#"):
        continue
    if not l.startswith(" "):
        parts = s.split()
        sec, name = parts[0], (parts[1] if len(parts) > 1 else None)
        if sec == "backend":
            backends[name] = collections.OrderedDict(srv=[])
        if sec == "userlist":
            userlists[name] = {"users": collections.OrderedDict(), "groups": collections.OrderedDict()}
        continue
    kw, _, rest = s.partition(" ")
    if sec in ("global", "defaults"):
        continue  # written by hand below
    if sec == "userlist":
        words = rest.split()
        if kw == "user":
            u = {words[1]: words[2]}
            if "groups" in words:
                u["groups"] = words[words.index("groups") + 1].split(",")
            userlists[name]["users"][words[0]] = u
        elif kw == "group":
            userlists[name]["groups"][words[0]] = words[words.index("users") + 1].split(",") if "users" in words else []
        else:
            sys.exit(f"haproxy.cfg:{n}: {kw} is not known to gen_halo_yaml.py")
        continue
    target = frontend if sec == "frontend" else backends[name]
    if sec == "frontend" and kw == "acl":
        a, _, d = rest.partition(" ")
        acls.setdefault(a, []).append(d)
    elif sec == "frontend" and kw == "bind":
        pass
    elif sec == "frontend" and kw == "option":
        words = rest.split()
        o = collections.OrderedDict()
        i = 1
        while i < len(words):
            if words[i] == "if-none":
                o["if-none"] = True
                i += 1
            else:
                o[words[i]] = words[i + 1]
                i += 2
        options[words[0]] = o
    elif kw == "monitor":
        target.setdefault("monitor", []).append(rest)
    elif kw in LISTS:
        target.setdefault(kw, []).append(rest)
    elif kw in SCALARS:
        target[kw] = rest
    elif kw in MAPS:
        code, _, f = rest.partition(" ")
        target.setdefault(kw, collections.OrderedDict())[code] = f
    elif sec == "backend" and kw == "server":
        sn, addr = rest.split()[:2]
        target["srv"].append((sn, addr))
    else:
        sys.exit(f"haproxy.cfg:{n}: {kw} is not known to gen_halo_yaml.py")


def q(s):
    return "'" + s.replace("'", "''") + "'"


def section(out, d, order):
    for key in order:
        if key not in d:
            continue
        v = d[key]
        if isinstance(v, dict):
            out.append(f"    {key}: {{{', '.join(f'{k}: {q(x)}' for k, x in v.items())}}}")
        elif isinstance(v, list):
            out.append(f"    {key}:")
            out += [f"      - {q(r)}" for r in v]
        else:
            out.append(f"    {key}: {q(v)}")


out = ["# The rule set of the differential test (rules_test.go) in halo's YAML,",
       "# written from haproxy.cfg beside it by gen_halo_yaml.py: the same lines",
       "# in the same order.",
       "defaults:", "  mode: http", "  timeout: {connect: 2s, client: 5s, server: 5s, http-request: 5s}"]
if userlists:
    out.append("userlists:")
    for un, ul in userlists.items():
        out.append(f"  {un}:")
        if ul["groups"]:
            out.append("    groups:")
            out += [f"      {g}: [{', '.join(us)}]" for g, us in ul["groups"].items()]
        out.append("    users:")
        for u, d in ul["users"].items():
            fields = [f"{k}: {q(v) if isinstance(v, str) else '[' + ', '.join(v) + ']'}" for k, v in d.items()]
            out.append(f"      {u}: {{{', '.join(fields)}}}")
out += ["frontends:", "  public:", "    bind: ['{{fe}}']"]
if options:
    out.append("    option:")
    for o, args in options.items():
        if not args:
            out.append(f"      {o}: true")
        else:
            out.append(f"      {o}: {{{', '.join(f'{k}: {q(v) if isinstance(v, str) else str(v).lower()}' for k, v in args.items())}}}")
out.append("    acl:")
for a, ds in acls.items():
    if len(ds) == 1:
        out.append(f"      {a}: {q(ds[0])}")
    else:
        out.append(f"      {a}:")
        out += [f"        - {q(d)}" for d in ds]
# Capture slots are numbered in the file's order: capture and declare
# come before tcp-request and http-request, as in haproxy.cfg.
section(out, frontend, ["monitor-uri", "monitor", "errorfile", "stick-table", "capture", "declare", "tcp-request",
                        "http-request", "use_backend", "default_backend", "http-response", "http-error"])
out.append("backends:")
for bn, b in backends.items():
    out.append(f"  {bn}:")
    section(out, b, ["stick-table", "tcp-request", "http-request", "http-response", "stick", "http-error"])
    out.append("    servers:")
    out += [f"      - {{name: {sn}, address: '{addr}'}}" for sn, addr in b["srv"]]
open("halo.yaml", "w").write("\n".join(out) + "\n")
