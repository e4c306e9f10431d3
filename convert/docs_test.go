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
	for kw := range processNotes {
		check(kw)
	}
	for kw := range optionNotes {
		check(kw)
	}
	for kw := range boolOptions {
		check(kw)
	}
	for kw := range serverWords {
		check(kw)
	}
	for kw := range bindWords {
		check(kw)
	}
	for kw := range ruleKeys {
		check(kw)
	}
	for kw := range oneString {
		check(kw)
	}
	for kw := range sectionKinds {
		check(kw)
	}
	if len(missing) > 0 {
		t.Errorf("docs/migrating.md does not name %q", missing)
	}
}
