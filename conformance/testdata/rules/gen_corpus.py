#!/usr/bin/env python3
# Writes corpus.txt, the requests of the rules differential test
# (conformance/rules_test.go). Run it again after changing it; the corpus
# is checked in so that a run does not depend on this script.
import base64
import itertools

srcs = ["127.0.0.2", "127.0.0.42", "127.0.0.200", "127.0.0.5", "127.0.0.17"]
hosts = ["identity.example.org", "Dashboard.Example.Org", "api.cloud.example.net", "legacy.example.com",
         "secure.example.org", "other.test", "identity.example.org:5000"]
paths = ["/", "/v3/auth/tokens", "/identity/v3", "/v2/images", "/v2.1/images?limit=5", "/dashboard/",
         "/compute/servers", "/os-hypervisors/detail", "/flavors", "/api/x", "/static/app.css",
         "/a-very-long-path/that/is/over/twenty"]
lines = ["# SRC METHOD TARGET | Header: value | ...  (one request per line; see rules_test.go)"]

def req(src, method, target, *headers, opts=()):
    h = list(headers)
    if method in ("POST", "PUT"):
        h.append("Content-Length: 0")
    lines.append(" | ".join([" ".join(list(opts) + [f"{src} {method} {target}"])] + h))

# Every host against every path, sources in turn.
for i, (host, path) in enumerate(itertools.product(hosts, paths)):
    req(srcs[i % 3], "GET", path, f"Host: {host}")
# Sources: allowed, refused by -f file (one address and a /30), admin /30.
for src in srcs:
    for path in ["/", "/limited/x", "/v3", "/ping", "/forbidden", "/nothere/x"]:
        req(src, "GET", path, "Host: identity.example.org")
# Headers the rules read and rewrite.
hdr_cases = [
    ["X-Name: Hello World"], ["X-Name: a\"b\\c"], ["X-Name: ÉTÉ"], ["X-Name:"],
    ["X-List: one;two;three"], ["X-List: ;;x;y"], ["X-List: single"],
    ["X-Multi: a, b", "X-Multi: last"], ["X-Multi: b"], ["X-Multi: x", "X-Multi: y", "X-Multi: z"], ["X-Multi: a,b,c"],
    ["X-Multi: a=\"b,c\", ,last"], ["X-Multi: ,"], ["X-Multi: \"b, x\",b"], ["X-Multi: a\\\", b\" ,c"],
    ["Cookie: lang=fr; beta=yes"], ["Cookie: beta=no"], ["Cookie: lang=en", "Cookie: beta=yes"], ["Cookie: other=1"],
    ["X-Num: 15"], ["X-Num: 25"], ["X-Num: -3"], ["X-Num: 150"], ["X-Num: abc"],
    ["X-Client: 10.2.3.4"], ["X-Client: 192.168.1.1"], ["X-Client: 10.1.2.3"], ["X-Client: not-an-ip"],
    ["X-Auth-Token: short"], ["X-Auth-Token: gAAAAABlongtoken"], ["User-Agent: curl/8.0"], ["User-Agent: python-keystoneclient"],
    ["X-Remove: gone"], ["x-remove: gone too"], ["X-Replace: foo-123"], ["X-Replace: nofoo"],
    ["X-Values: a, b, a"], ["X-Values: c"], ["X-Values: \"a, b\", a"], ["X-Values: a,,a"], ["X-Unset: 1", "Cookie: beta=yes"],
    ["X-Forwarded-Proto: https"], ["X-Added: zero"],
]
for i, hs in enumerate(hdr_cases):
    for path in ["/v3/x", "/other"]:
        req(srcs[i % 3], "GET", path, "Host: identity.example.org", *hs)
# Methods.
for method in ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]:
    for path in ["/compute/servers", "/v3/auth", "/dashboard/", "/os-hypervisors"]:
        req("127.0.0.42", method, path, "Host: other.test")
# Query strings and url_param.
for q in ["?debug=1", "?debug=0", "?id=42", "?id=1&id=2", "?a=1&debug=1&id=x", "?", "?x", "?id=", "?debug=1&x=2"]:
    for path in ["/v3/q", "/q"]:
        req("127.0.0.2", "GET", path + q, "Host: identity.example.org")
# Absolute-form targets.
for t in ["http://identity.example.org/v3/abs", "http://api.cloud.example.net/x?y=1", "http://other.test/"]:
    host = t.split("/")[2]
    req("127.0.0.42", "GET", t, f"Host: {host}")
# Cookies named twice: a sample is the last occurrence, an ACL any.
for hs in [["Cookie: a=x; a=y", "Cookie: b=1; a=z"], ["Cookie: a=y; a=x"], ["Cookie: a=q"], ["Cookie: a=1; a=2"], ["Cookie: b=1"], ["Cookie: a=; a=x"]]:
    req("127.0.0.2", "GET", "/cook", "Host: identity.example.org", *hs)
# The *_val fetches: leading digits, 0 without any.
for v in ["x", "12abc", "-", "", "-3", "7"]:
    req("127.0.0.42", "GET", "/val?a=" + v, "Host: identity.example.org", "X-V: " + v, "Cookie: a=" + v)
# Redirects, returns, allow.
for path in ["/old/page?x=1", "/old", "/account", "/dq/x?drop=1", "/loc/here", "/ret", "/allowed/x", "/allowed/deny",
             "/ping", "/nothere", "/seturi?x=1", "/ruri/a/b", "/img/logo.png", "/v2.0/tokens", "/UPPER/case", "/upper", "/-dash", "/abcde"]:
    for host in ["identity.example.org", "secure.example.org"]:
        req("127.0.0.42", "GET", path, f"Host: {host}")
req("127.0.0.42", "GET", "/account", "Host: identity.example.org", "Cookie: beta=yes")
# Responses the http-response rules act on.
for path in ["/keep", "/setcookie", "/fail", "/move", "/multiout", "/teapot", "/keep/setcookie", "/v3/fail", "/v3/setcookie"]:
    for host in ["identity.example.org", "Dashboard.Example.Org", "other.test"]:
        req("127.0.0.200", "GET", path, f"Host: {host}")
# The explicit match methods, append-slash and response value rewrites.
for path in ["/mid/x", "/x/mid/", "/begin/a", "/beginx", "/x.end", "/x.endx", "/p/dir/q", "/p/dirx", "/slash/page?q=1",
             "/slash/", "/resvalues"]:
    req("127.0.0.42", "GET", path, "Host: api.cloud.example.net")
# Host forms the maps and host ACLs see differently.
for host in ["IDENTITY.EXAMPLE.ORG", "identity.example.org.", "x.dashboard.example.org", "dashboard.example.org.evil",
             "api.", "example.net", "legacy", "sub.example.com:8080"]:
    req("127.0.0.2", "GET", "/v3/h", f"Host: {host}")
# paths.lst as HAProxy reads it: leading blanks dropped, trailing ones kept.
for path in ["/os-services/x", "/os-trail", "/os-trail/x", "/os-hash", "/os-crlf/x", "/lf", "/lf/x?y=1",
             "/deny400", "/deny407", "/deny408", "/deny500", "/deny504"]:
    req("127.0.0.2", "GET", path, "Host: identity.example.org")
# Tracking: a source marks its entry (gpc0) and reads its counters back;
# credentials for the userlist; a dead backend's http-error page; the
# monitor URI.
for src in ["127.0.0.7", "127.0.0.8"]:
    for path in ["/mark", "/mark", "/v3/after-mark", "/v3/again"]:
        req(src, "GET", path, "Host: identity.example.org", "X-Client: 10.9.9.9")
req("127.0.0.7", "GET", "/v3/x", "Host: identity.example.org", "X-Client: 127.0.0.8")
for auth in [None, "Basic YWxpY2U6czNjcmV0", "Basic Ym9iOmh1bnRlcjI=", "Basic YWxpY2U6d3Jvbmc=", "Bearer x",
             "Basic " + base64.b64encode(b"carol:carolpw").decode(), "Basic " + base64.b64encode(b"carol:nope").decode()]:
    hs = ["Host: identity.example.org"] + ([f"Authorization: {auth}"] if auth else [])
    req("127.0.0.2", "GET", "/admin/x", *hs)
req("127.0.0.2", "GET", "/dead/x", "Host: identity.example.org")
req("127.0.0.2", "GET", "/healthz", "Host: identity.example.org")
req("127.0.0.2", "GET", "/rawfile", "Host: identity.example.org")
req("127.0.0.2", "GET", "/tarpit", "Host: identity.example.org")
for src in ["127.0.0.99", "127.0.0.98", "127.0.0.2"]:
    req(src, "GET", "/tcpreject/x", "Host: identity.example.org")
    req(src, "GET", "/v3/x", "Host: identity.example.org")
req("127.0.0.2", "GET", "/v3/x", "Host: identity.example.org", "X-Num: 15")
req("127.0.0.2", "GET", "/v3/x", "Host: identity.example.org", "User-Agent: Python-urllib/3")
req("127.0.0.42", "GET", "/v3/x", "Host: identity.example.org", "X-Client-IP: 1.2.3.4")
req("127.0.0.2", "GET", "/v3/x", "Host: identity.example.org", "X-Client-IP: 1.2.3.4")
# use_backend %[...]: a backend named by a header through converters; a
# name no backend has falls through to the next line.
for hs in [["X-Be: IMAGE"], ["X-Be: Compute"], ["X-Be: ghost"], ["X-Be: unknown"], ["X-Route: a.nova.b"],
           ["X-Route: x.keystone"], ["X-Route: nodots"], ["X-Route-W: /a/glance"], ["X-Route-W: glance/"],
           ["X-Be: image", "X-Route: a.nova"]]:
    req("127.0.0.2", "GET", "/routed", "Host: other.test", *hs)
# Stickiness by source: each source's first request is balanced, the
# later ones stay; sources interleaved so that round robin moves on.
for rnd in range(3):
    for src in ["127.0.0.51", "127.0.0.52", "127.0.0.53", "127.0.0.54"]:
        req(src, "GET", f"/sticky/src/{rnd}", "Host: other.test")
# Stickiness by a value: stored from the response (X-Sid) and from the
# request (X-Stick), matched from the sid cookie.
for hs in [[], ["Cookie: sid=keystone-sid"], ["Cookie: sid=glance-sid"], ["Cookie: sid=nova-sid"], ["X-Stick: mine"],
           ["Cookie: sid=mine"], ["Cookie: sid=mine"], ["Cookie: sid=unknown"], ["X-Stick: mine", "Cookie: sid=mine"]]:
    req("127.0.0.2", "GET", "/sticky/sid/x", "Host: other.test", *hs)
    req("127.0.0.2", "GET", "/sticky/sid/sid", "Host: other.test", *hs)
# Persistence to p2, which is in maintenance: only force-persist reaches
# it; ignore-persist balances whatever the cookie says. (Both matching
# is left out: halo lets ignore-persist win, HAProxy the first line, as
# docs/configuration.md says.)
for hs in [[], ["Cookie: SRV=p1"], ["Cookie: SRV=p2"], ["Cookie: SRV=p2", "X-Force: 1"], ["Cookie: SRV=p1", "X-Force: 1"],
           ["Cookie: SRV=p1", "X-Ignore: 1"], ["Cookie: SRV=p2", "X-Ignore: 1"], ["Cookie: SRV=bogus"],
           ["X-Force: 1"]]:
    req("127.0.0.2", "GET", "/persist/x", "Host: other.test", *hs)
# expect-proxy: 127.0.0.66 must send a PROXY header, the others must not.
req("127.0.0.66", "GET", "/v3/px", "Host: identity.example.org", opts=["@proxy=203.0.113.9:4000"])
req("127.0.0.66", "GET", "/v3/px", "Host: identity.example.org", opts=["@proxy=127.0.0.99:4001"])
req("127.0.0.66", "GET", "/v3/px", "Host: identity.example.org")
req("127.0.0.2", "GET", "/v3/px", "Host: identity.example.org", opts=["@proxy=203.0.113.9:4000"])
# TLS terminated: with and without SNI, TLS 1.2 and 1.3, with a client
# certificate.
for opts in [["@sni=identity.example.org"], ["@tls"], ["@sni=x.image.example.org"], ["@sni=other.test"],
             ["@sni=identity.example.org", "@tls12"], ["@tls12"], ["@cert"], ["@cert", "@tls12", "@sni=x.image.example.org"]]:
    for path in ["/v3/tls", "/compute/tls"]:
        req("127.0.0.2", "GET", path, "Host: identity.example.org", opts=["@fe=tls"] + opts)
# Mode tcp: streams routed and refused by their first bytes; TLS passed
# through to the tls frontend by SNI.
for method, path, hs in [("GET", "/", []), ("GET", "/a-longer-path/to/make/the/request/longer", ["X-Pad: 0123456789"]),
                         ("POST", "/x", []), ("PUT", "/x", []), ("DELETE", "/x", []), ("TRACE", "/", []),
                         ("GET", "/x", ["Cookie: mstshash=ks"])]:
    req("127.0.0.2", method, path, "Host: other.test", *hs, opts=["@fe=tcp"])
for opts in [["@sni=identity.example.org"], ["@sni=other.test"], ["@sni=x.image.example.org", "@tls12"], ["@tls"]]:
    req("127.0.0.2", "GET", "/v3/pass", "Host: identity.example.org", opts=["@fe=tcp"] + opts)
# Counters: tracked by tcp-request connection (127.0.0.31, .32), session
# (.36) and content (the others); variables set and unset at each step.
for src in ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34", "127.0.0.35", "127.0.0.36", "127.0.0.37",
            "127.0.0.38", "127.0.0.39"]:
    for path in ["/x", "/mark", "/x"]:
        req(src, "GET", path, "Host: other.test", opts=["@fe=cnt"])
# A request that tcp-request content tracks and then rejects is not
# counted in http_req_cnt (the requests after /creject show it).
cnt_paths = ["/x", "/mark", "/x", "/creject", "/hmark", "/sc1/x", "/sc2/x", "/st/404/x", "/st/404/y", "/st/500/x",
             "/st/202/x", "/st/203/x", "/st/204/x", "/st/205/x", "/st/403/x", "/unset/x", "/caccept", "/setpq?x=1",
             "/rpq/a?b=1", "/debug", "/clear", "/x", "/setcookie", "/v3/q?a=1&n=7", "/creject", "/x"]
for src in ["127.0.0.40", "127.0.0.41"]:
    for path in cnt_paths:
        req(src, "GET", path, "Host: identity.example.org", opts=["@fe=cnt"])
for hs in [["X-Num: 15"], ["X-Num: 25"], ["X-Num: -3"], ["X-Num: 0"], ["X-B64: aGVsbG8="], ["X-B64: !!"],
           ["X-F: a, b", "X-F: c"], ["Cookie: a=12; a=3"], ["X-Client: 10.1.2.3"], ["Host: www.example.org"]]:
    req("127.0.0.42", "GET", "/v3/conv/?q=%41%20b", "Host: identity.example.org", *hs, opts=["@fe=cnt"])
for method, target in [("POST", "/m"), ("PUT", "/m"), ("DELETE", "/m"), ("HEAD", "/m"), ("OPTIONS", "/m"),
                       ("OPTIONS", "*"), ("GET", "http://identity.example.org/abs"), ("TRACE", "/m")]:
    req("127.0.0.43", method, target, "Host: identity.example.org", opts=["@fe=cnt"])
# The request line as received (after rewrites), URL hashes, unique IDs,
# format flags; redirect words in any order and ignore-empty.
for path in ["/v3/auth/tokens?nocatalog", "/img/a.png?x=1", "/seturi?x=1", "/v2.0/tokens", "/ruri/q?z=2"]:
    for host in ["identity.example.org", "Dashboard.Example.Org:5000"]:
        req("127.0.0.5", "GET", path, f"Host: {host}", "X-Name: a\"b]c\\d")
for path, hs in [("/anyorder/x?y=1", []), ("/goto/x", []), ("/goto/y", ["X-Goto: /there"]),
                 ("/goto/z", ["X-Goto: https://e.example/a?b"])]:
    req("127.0.0.5", "GET", path, "Host: identity.example.org", *hs)
open("corpus.txt", "w").write("\n".join(lines) + "\n")
print(len(lines) - 1, "requests")
