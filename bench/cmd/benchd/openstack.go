package main

// This file is benchd's OpenStack-like backend: answers shaped as the
// HTTP APIs of a controller send them (Keystone, Nova, Glance, Neutron
// behind Apache or uWSGI), so that the realistic scenarios measure the
// per-header and per-KiB cost a proxy pays on real traffic, not on
// benchd's one-header "hello".

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// openstackBodies are the JSON bodies by size class, built once: 1, 2, 4
// and 8 KiB, as a token, a server list, an image list and a port list
// weigh.
var openstackBodies = func() [4][]byte {
	var out [4][]byte
	for i, size := range []int{1 << 10, 2 << 10, 4 << 10, 8 << 10} {
		out[i] = jsonOfSize(size)
	}
	return out
}()

// jsonOfSize is a JSON document of exactly size bytes: a list of
// resources with ids, names and links, padded in its last field.
func jsonOfSize(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"resources": [`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"id": "%08x-5d2c-4b6e-9a1f-3c8e7d6b5a40", "name": "resource-%d", "status": "ACTIVE", `+
			`"links": [{"rel": "self", "href": "http://controller:8774/v2.1/resources/%08x"}]}`, i, i, i)
	}
	b.WriteString(`], "pad": "`)
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return []byte(b.String())
}

var (
	applicationJSON = []byte("application/json")
	openstackVary   = []byte("OpenStack-API-Version, X-OpenStack-Nova-API-Version")
	apacheServer    = []byte("Apache/2.4.57 (Debian) mod_wsgi/4.9.4 Python/3.11")
	requestSeq      atomic.Uint64
)

// openstackBodyFor picks the body size class from the path's first
// segment, so that the wrk script's mix of paths gives a mix of sizes.
func openstackBodyFor(path []byte) []byte {
	switch {
	case hasPrefix(path, "/identity"):
		return openstackBodies[0]
	case hasPrefix(path, "/compute"):
		return openstackBodies[1]
	case hasPrefix(path, "/image"):
		return openstackBodies[2]
	case hasPrefix(path, "/network"):
		return openstackBodies[3]
	}
	return openstackBodies[0]
}

// openstackBodyFiles name the bodies as files, in size order, for
// writeOpenStackBodies: bench/configs/nginx-openstack.conf serves each
// API's path from its file.
var openstackBodyFiles = [4]string{"identity.json", "compute.json", "image.json", "network.json"}

// writeOpenStackBodies writes the bodies serveOpenStack answers with into
// dir, so that nginx answers the realistic scenarios with the same bytes.
func writeOpenStackBodies(dir string) error {
	for i, name := range openstackBodyFiles {
		if err := os.WriteFile(filepath.Join(dir, name), openstackBodies[i], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// serveOpenStack answers as an OpenStack API does: about ten headers
// (Date, Server, Content-Type, Content-Length, Vary, the request id
// headers, the microversion headers, Cache-Control, Keep-Alive) and a
// JSON body.
func serveOpenStack(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentTypeBytes(applicationJSON)
	h.SetServerBytes(apacheServer)
	h.SetBytesV("Date", fasthttp.AppendHTTPDate(nil, time.Now()))
	h.SetBytesV("Vary", openstackVary)
	id := requestIDOf(requestSeq.Add(1))
	h.SetBytesV("x-openstack-request-id", id)
	h.SetBytesV("x-compute-request-id", id)
	h.Set("OpenStack-API-Version", "compute 2.1")
	h.Set("X-OpenStack-Nova-API-Version", "2.1")
	h.Set("Cache-Control", "no-cache")
	h.Set("Keep-Alive", "timeout=5, max=100") // Apache's
	ctx.Response.SetBodyRaw(openstackBodyFor(ctx.Path()))
}

// requestIDOf is an OpenStack request id: "req-" and a UUID.
func requestIDOf(n uint64) []byte {
	b := make([]byte, 0, 40)
	b = append(b, "req-"...)
	hex := strconv.FormatUint(n, 16)
	for i := len(hex); i < 8; i++ {
		b = append(b, '0')
	}
	b = append(b, hex...)
	return append(b, "-2f3c-4d5e-8f9a-0b1c2d3e4f50"...)
}
