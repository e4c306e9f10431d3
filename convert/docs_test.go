package convert

import (
	"os"
	"strings"
	"testing"
)

// docs/migrating.md names every keyword the converter knows, so that its
// table does not drift from the code.
func TestMigratingDocNamesEveryKeyword(t *testing.T) {
	doc, err := os.ReadFile("../docs/migrating.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	var missing []string
	check := func(kw string) {
		if !strings.Contains(text, "`"+kw+"`") && !strings.Contains(text, "`"+kw+" ") && !strings.Contains(text, " "+kw+"`") {
			missing = append(missing, kw)
		}
	}
	for _, kws := range [][]string{
		keys(processNotes), keys(optionNotes), keys(boolOptions), keys(serverWords),
		keys(bindWords), keys(ruleKeys), keys(oneString), keys(sectionKinds),
	} {
		for _, kw := range kws {
			check(kw)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/migrating.md does not name %q", missing)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
