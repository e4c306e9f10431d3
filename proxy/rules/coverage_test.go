package rules

import (
	"testing"

	"github.com/halo-lb/halo/config/lang"
)

// Every fetch and converter the parser accepts has an implementation,
// except those the config package refuses until their feature lands
// (stick tables, userlists): it is checked there, with a position.
func TestEveryWordImplemented(t *testing.T) {
	for _, name := range lang.FetchNames() {
		d := lang.Fetch(name)
		if d.Stick != nil || d.Name == "http_auth" || d.Name == "http_auth_group" {
			continue
		}
		if fetchFns[d.Name] == nil {
			t.Errorf("sample fetch %s (%s) has no implementation", name, d.Name)
		}
	}
	for _, name := range lang.ConverterNames() {
		d := lang.Converter(name)
		if d.Map == nil && convFns[name] == nil {
			t.Errorf("converter %s has no implementation", name)
		}
	}
}
