package stats

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCountersSurviveReloadsAndClear: a reload keeps every counter (HAProxy
// resets them), "clear counters" resets only the maxima, "clear counters
// all" everything.
func TestCountersSurviveReloadsAndClear(t *testing.T) {
	r, _, _ := twoServerRig(t)
	url := "http://" + r.frontend("fe") + "/"
	get := func(n int) {
		for i := 0; i < n; i++ {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	get(6)
	stat := func() map[string]map[string]string {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows
	}
	before := stat()
	if before["be/BACKEND"]["stot"] != "6" || before["be/s1"]["hrsp_2xx"] != "3" || before["be/s1"]["smax"] != "1" {
		t.Fatalf("before the reload: be stot %s, s1 hrsp_2xx %s smax %s", before["be/BACKEND"]["stot"], before["be/s1"]["hrsp_2xx"], before["be/s1"]["smax"])
	}
	// A reload that changes a server's check interval and adds a server.
	r.apply(strings.Replace(twoServers, "inter: 100ms, fall: 2}\n      - {name: s2", "inter: 200ms, fall: 2}\n      - {name: s3, address: \"127.0.0.1:9\"}\n      - {name: s2", 1))
	after := stat()
	for _, key := range []string{"fe/FRONTEND", "be/BACKEND", "be/s1", "be/s2"} {
		for _, col := range []string{"stot", "bin", "bout", "hrsp_2xx", "req_tot", "lbtot", "smax"} {
			if after[key][col] != before[key][col] {
				t.Errorf("%s %s: %q before the reload, %q after", key, col, before[key][col], after[key][col])
			}
		}
		if after[key]["iid"] != before[key]["iid"] || after[key]["sid"] != before[key]["sid"] {
			t.Errorf("%s: iid/sid %s/%s before the reload, %s/%s after", key, before[key]["iid"], before[key]["sid"], after[key]["iid"], after[key]["sid"])
		}
	}
	if after["be/s3"]["sid"] != "3" {
		t.Errorf("the new server s3 has sid %q, want 3", after["be/s3"]["sid"])
	}
	if out := r.cmd("oper.sock", "clear counters"); out != "\n" {
		t.Fatalf("clear counters: %q", out)
	}
	cleared := stat()
	if cleared["be/s1"]["smax"] != "0" || cleared["be/s1"]["stot"] != before["be/s1"]["stot"] || cleared["fe/FRONTEND"]["smax"] != cleared["fe/FRONTEND"]["scur"] {
		t.Errorf("after clear counters: s1 smax %s (want 0) stot %s (want %s), fe smax %s (want scur, the kept-alive client)", cleared["be/s1"]["smax"],
			cleared["be/s1"]["stot"], before["be/s1"]["stot"], cleared["fe/FRONTEND"]["smax"])
	}
	if out := r.cmd("admin.sock", "clear counters all"); out != "\n" {
		t.Fatalf("clear counters all: %q", out)
	}
	zeroed := stat()
	for _, key := range []string{"fe/FRONTEND", "be/BACKEND", "be/s1"} {
		for _, col := range []string{"stot", "bout", "hrsp_2xx", "req_tot"} {
			if zeroed[key][col] != "0" {
				t.Errorf("after clear counters all: %s %s = %q", key, col, zeroed[key][col])
			}
		}
	}
}
