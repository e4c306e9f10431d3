package conformance

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
)

// TestRequestLanguageIsComparedWithHAProxy checks that every fetch,
// converter, match method, ACL suffix, predefined ACL, action and stick
// kind halo's language knows (its own tables, config/lang) is used by the
// rule set TestRulesAgainstHAProxy gives both proxies: a word halo gains
// is compared with the real HAProxy or this test fails, naming it.
//
// halo.yaml is loaded as halo loads it, and the words are taken from what
// the parser made of it (a fetch named inside a format, a converter of a
// use_backend name), so a word in a comment or in a header's name does
// not count. The spellings the parser folds (aliases such as hdr for
// req.hdr, the suffixes of path_beg, -m METHOD) are looked for as words
// of both haproxy.cfg and halo.yaml.
func TestRequestLanguageIsComparedWithHAProxy(t *testing.T) {
	vars := ruleFiles(t)
	// Addresses that are not dialled: the configuration is only loaded.
	for i, k := range []string{"fe", "fe_tls", "fe_tcp", "fe_cnt", "keystone", "glance", "nova", "horizon", "self_tls"} {
		vars[k] = "127.0.0.1:" + strconv.Itoa(1+i)
	}
	cfg, err := config.Load(renderRules(t, "halo.yaml", vars))
	if err != nil {
		t.Fatal(err)
	}
	used := usedWords(cfg)

	var words [2][]string
	for i, f := range []string{"haproxy.cfg", "halo.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata/rules", f))
		if err != nil {
			t.Fatal(err)
		}
		words[i] = configWords(string(b))
	}
	inBoth := func(w string) bool {
		return slices.Contains(words[0], w) && slices.Contains(words[1], w)
	}

	var missing []string
	for _, name := range lang.FetchNames() {
		d := lang.Fetch(name)
		if name != d.Name { // an alias: its spelling
			if !inBoth(name) {
				missing = append(missing, "fetch alias "+name)
			}
			continue
		}
		if !used["fetch "+name] {
			missing = append(missing, "fetch "+name)
		}
	}
	for _, name := range lang.ConverterNames() {
		if !used["converter "+name] {
			missing = append(missing, "converter "+name)
		}
	}
	for _, m := range lang.MatchNames() {
		if !inBoth("-m " + m) {
			missing = append(missing, "match method -m "+m)
		}
	}
	for _, s := range lang.ACLSuffixes() {
		found := false
		for _, w := range words[0] {
			if f, ok := strings.CutSuffix(w, "_"+s); ok && lang.Fetch(f) != nil && inBoth(w) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, "ACL suffix _"+s)
		}
	}
	for name := range lang.Predefined {
		if !used["acl "+name] {
			missing = append(missing, "predefined ACL "+name)
		}
	}
	for _, rs := range lang.RuleSets {
		for _, a := range lang.ActionNames(rs) {
			if !used[rs.String()+" "+a] {
				missing = append(missing, rs.String()+" "+a)
			}
		}
	}
	for _, k := range lang.StickKinds {
		if !used["stick "+k] {
			missing = append(missing, "stick "+k)
		}
	}
	missing = slices.DeleteFunc(missing, haloOnly)
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is in no rule of testdata/rules (compared with HAProxy by TestRulesAgainstHAProxy)", m)
	}
	t.Logf("%d words of the language used by the rule set, %d missing", len(used), len(missing))
}

// haloOnly reports whether a word of halo's language is one HAProxy 2.6
// does not have, so that no configuration can give it to both: checked
// with haproxy -c, which refuses each ("unknown fetch method", "unknown
// converter", "no such ACL", an unknown action). The lead is told of each;
// they stay for configurations written for halo.
func haloOnly(word string) bool {
	switch word {
	case "fetch alias fhdr", // HAProxy has req.fhdr only
		"fetch url_param_val",      // HAProxy spells it urlp_val only (an alias here)
		"fetch src_trackers",       // HAProxy has sc_trackers and scN_trackers only
		"ACL suffix _found",        // HAProxy has -m found, no _found spelling
		"predefined ACL HTTP_3.0",  // not among HAProxy 2.6's predefined ACLs
		"http-request sc-clr-gpc0", // HAProxy 2.6 has the sc_clr_gpc0 fetch, no such action
		"http-response sc-clr-gpc0":
		return true
	}
	// HAProxy reads bytes_in_cnt and bytes_out_cnt through kbytes_in and
	// kbytes_out only.
	if name, ok := strings.CutPrefix(word, "fetch "); ok && (strings.HasSuffix(name, "_bytes_in_cnt") || strings.HasSuffix(name, "_bytes_out_cnt")) {
		return true
	}
	// HAProxy's map converters are map_MATCH and map_MATCH_int|ip (and
	// map_str): no map_MATCH_str.
	if name, ok := strings.CutPrefix(word, "converter map_"); ok && strings.HasSuffix(name, "_str") {
		return true
	}
	return false
}

// usedWords walks what the parser made of a configuration's rules and
// returns the words used: "fetch NAME", "converter NAME", "acl NAME" (a
// predefined ACL named in a condition), "RULESET ACTION" and "stick KIND".
func usedWords(cfg *config.Config) map[string]bool {
	used := map[string]bool{}
	actions := func(rs lang.RuleSet, rules []*lang.Rule) {
		for _, r := range rules {
			used[rs.String()+" "+r.Action] = true
		}
	}
	rules := func(r *config.Rules) {
		actions(lang.HTTPRequest, r.HTTPRequest)
		actions(lang.HTTPRequest, r.Redirects)
		actions(lang.HTTPResponse, r.HTTPResponse)
		actions(lang.TCPConnection, r.TCPConnection)
		actions(lang.TCPSession, r.TCPSession)
		actions(lang.TCPContent, r.TCPContent)
		for _, s := range r.Sticks {
			used["stick "+s.Kind] = true
		}
	}
	for _, fe := range cfg.Frontends {
		rules(&fe.Rules)
	}
	for _, be := range cfg.Backends {
		rules(&be.Rules)
	}
	seen := map[uintptr]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() || seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
			switch x := v.Interface().(type) {
			case *lang.Sample:
				used["fetch "+x.Fetch.Name] = true
				for _, c := range x.Convs {
					used["converter "+c.Def.Name] = true
				}
			case *lang.FetchDef, *lang.ConvDef:
				return // the tables themselves
			}
			walk(v.Elem())
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if term, ok := v.Interface().(lang.Term); ok && term.Name != "" {
				if _, ok := lang.Predefined[term.Name]; ok {
					used["acl "+term.Name] = true
				}
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				walk(it.Value())
			}
		}
	}
	walk(reflect.ValueOf(cfg))
	return used
}

// configWords splits a configuration's text into its words as the
// language reads them, inside samples too ("req.hdr(x),lower" gives
// req.hdr, x and lower), with "-m METHOD" kept as one word. Comments are
// left out.
func configWords(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "#") {
			continue
		}
		ws := strings.FieldsFunc(line, func(r rune) bool {
			return strings.ContainsRune(" \t(),{}[]%'\"!:", r)
		})
		for i, w := range ws {
			if w == "-m" && i+1 < len(ws) {
				w += " " + ws[i+1]
			}
			out = append(out, w)
		}
	}
	return out
}
