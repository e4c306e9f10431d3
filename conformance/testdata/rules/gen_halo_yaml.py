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
         "http-error", "tcp-request", "stick", "force-persist", "ignore-persist"}
SCALARS = {"default_backend", "unique-id-format", "unique-id-header", "monitor-uri", "stick-table", "mode", "balance", "cookie"}
# Bind and server options: those with a value, the others are flags.
BIND_VALUES = {"crt", "verify", "ca-file", "alpn", "ssl-min-ver", "ssl-max-ver", "ciphers"}
SERVER_VALUES = {"cookie", "inter", "rise", "fall", "weight", "port"}


def options(words, values, where):
    o = collections.OrderedDict()
    i = 0
    while i < len(words):
        w = words[i]
        if w in values:
            o[w] = words[i + 1]
            i += 2
        else:
            o[w] = True
            i += 1
    return o

MAPS = {"errorfile"}  # errorfile CODE FILE: a mapping of codes

lines = open("haproxy.cfg").read().split("\n")
sec = name = None
frontends = collections.OrderedDict()
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
            backends[name] = collections.OrderedDict(srv=[], acl=collections.OrderedDict())
        if sec == "frontend":
            frontends[name] = collections.OrderedDict(acl=collections.OrderedDict(), option=collections.OrderedDict())
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
    target = frontends[name] if sec == "frontend" else backends[name]
    if kw == "acl":
        a, _, d = rest.partition(" ")
        target["acl"].setdefault(a, []).append(d)
    elif sec == "frontend" and kw == "bind":
        words = rest.split()
        target["bind"] = (words[0], options(words[1:], BIND_VALUES, n))
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
        target["option"][words[0]] = o
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
        words = rest.split()
        target["srv"].append((words[0], words[1], options(words[2:], SERVER_VALUES, n)))
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


def yval(v):
    return "true" if v is True else q(v)


def acl_block(out, acls):
    if not acls:
        return
    out.append("    acl:")
    for a, ds in acls.items():
        if len(ds) == 1:
            out.append(f"      {a}: {q(ds[0])}")
        else:
            out.append(f"      {a}:")
            out += [f"        - {q(d)}" for d in ds]


out.append("frontends:")
for fn, fe in frontends.items():
    out.append(f"  {fn}:")
    if "mode" in fe:
        out.append(f"    mode: {fe['mode']}")
    addr, bopts = fe["bind"]
    if bopts:
        out.append(f"    bind: [{{address: {q(addr)}, {', '.join(f'{k}: {yval(v)}' for k, v in bopts.items())}}}]")
    else:
        out.append(f"    bind: [{q(addr)}]")
    if fe["option"]:
        out.append("    option:")
        for o, args in fe["option"].items():
            if not args:
                out.append(f"      {o}: true")
            else:
                out.append(f"      {o}: {{{', '.join(f'{k}: {q(v) if isinstance(v, str) else str(v).lower()}' for k, v in args.items())}}}")
    acl_block(out, fe["acl"])
    # Capture slots are numbered in the file's order: capture and declare
    # come before tcp-request and http-request, as in haproxy.cfg.
    section(out, fe, ["unique-id-format", "unique-id-header", "monitor-uri", "monitor", "errorfile", "stick-table", "capture", "declare", "tcp-request",
                      "http-request", "use_backend", "default_backend", "http-response", "http-error"])
out.append("backends:")
for bn, b in backends.items():
    out.append(f"  {bn}:")
    for k in ("mode", "balance"):
        if k in b:
            out.append(f"    {k}: {b[k]}")
    acl_block(out, b["acl"])
    section(out, b, ["cookie", "force-persist", "ignore-persist", "stick-table", "tcp-request", "http-request",
                     "http-response", "stick", "http-error"])
    if b["srv"]:
        out.append("    servers:")
    for sn, addr, sopts in b["srv"]:
        extra = "".join(f", {k}: {yval(v)}" for k, v in sopts.items())
        out.append(f"      - {{name: {sn}, address: {q(addr)}{extra}}}")
open("halo.yaml", "w").write("\n".join(out) + "\n")
