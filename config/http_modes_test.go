package config

import (
	"strings"
	"testing"
)

func TestConnectionModes(t *testing.T) {
	base := func(fe, be, def string) string {
		return "defaults: {mode: http, option: {" + def + "}}\nfrontends:\n  fe: {bind: \"127.0.0.1:80\", default_backend: be, option: {" + fe + "}}\nbackends:\n  be: {servers: [{name: s, address: \"127.0.0.1:1\"}], option: {" + be + "}}\n"
	}
	for _, tc := range []struct {
		fe, be, def    string
		feMode, beMode ConnMode
	}{
		{"", "", "", KeepAlive, KeepAlive},
		{"", "", "http-server-close: true", ServerClose, ServerClose},
		{"httpclose: true", "", "http-server-close: true", Close, ServerClose},
		{"http-keep-alive: true", "", "httpclose: true", KeepAlive, Close},
		{"http-server-close: false", "", "", KeepAlive, KeepAlive},
	} {
		cfg, err := Parse("halo.yaml", []byte(base(tc.fe, tc.be, tc.def)))
		if err != nil {
			t.Fatal(err)
		}
		if fe, be := cfg.Frontends[0].Options.ConnMode, cfg.Backends[0].Options.ConnMode; fe != tc.feMode || be != tc.beMode {
			t.Errorf("fe {%s} be {%s} defaults {%s}: modes %v and %v, want %v and %v", tc.fe, tc.be, tc.def, fe, be, tc.feMode, tc.beMode)
		}
	}
	_, err := Parse("halo.yaml", []byte(base("http-server-close: true, httpclose: true", "", "")))
	if err == nil || !strings.Contains(err.Error(), "halo.yaml:3:") || !strings.Contains(err.Error(), "http-server-close and httpclose exclude each other") {
		t.Errorf("two modes in one section: %v", err)
	}
}
