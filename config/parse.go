package config

import (
	"cmp"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
	"gopkg.in/yaml.v3"
)

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		return name
	})
	return v
}()

// Parse decodes, resolves and validates a configuration held in memory; file
// names it in error messages.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{decoder: decoder{file: file, positions: map[string]position{}, values: map[string]*yaml.Node{}, src: newSource(data), offsets: map[string][]int{}}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, ErrorList{yamlSyntaxError(file, err)}
	}
	var fc fileConfig
	if len(root.Content) == 0 {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: "the configuration is empty"}}
	}
	// Shape errors do not stop here: the section and tag checks still run
	// on what did decode, so one "halo check" lists every problem. Only the
	// cross-field rules need a file without such errors.
	p.decode(root.Content[0], reflect.ValueOf(&fc).Elem(), "")
	p.checkSections(&fc)
	p.checkTags(&fc)
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	cfg := p.resolve(&fc)
	p.build(cfg, &fc)
	p.checkCrossField(cfg, &fc)
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	return cfg, nil
}

type parser struct {
	decoder
	// serverOptions is global's ssl-default-server-options, parsed once
	// (by serverDefaults) for every server line.
	serverOptions *serverOptions
	// ruleScope is the section whose rules are being checked (rules.go).
	ruleScope ruleScope
	// captureRules are the capture rules seen, for buildCaptures.
	captureRules []captureRule
	// pinned, when set, is the offset every atWord error goes to: the
	// lf-file word, while the samples of the file's format are checked
	// (their offsets are the file's, not the line's).
	pinned *int
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlSyntaxError(file string, err error) *Error {
	e := &Error{File: file, Line: 1, Col: 1, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	return e
}

// relative resolves a path written in the file (a secret's file, the
// cluster's data-dir) relative to the configuration file's directory, so
// that a configuration means the same whatever directory halo starts in.
func (p *parser) relative(file string) string {
	if file != "" && !filepath.IsAbs(file) && p.file != "" {
		return filepath.Join(filepath.Dir(p.file), file)
	}
	return file
}

// at reports an error at the position recorded for path, or for the
// nearest parent path that has one.
func (p *parser) at(path, format string, args ...any) {
	pos := position{1, 1}
	for q := path; q != ""; {
		if found, ok := p.positions[q]; ok {
			pos = found
			break
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: pos.line, Col: pos.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// atWord reports an error about the word at byte offset off of the
// string value at path: at the line and column in the file of the text
// that byte was read from, in whatever YAML style the value is written
// (an escape sequence's backslash for a byte an escape makes), else, when
// the value cannot be re-read, at the key.
func (p *parser) atWord(path string, off int, format string, args ...any) {
	if p.pinned != nil {
		off = *p.pinned
	}
	offs, ok := p.offsets[path]
	if !ok {
		if n := p.values[path]; n != nil {
			offs = valueOffsets(p.src, n)
		}
		p.offsets[path] = offs
	}
	if offs == nil {
		p.at(path, format, args...)
		return
	}
	pos := p.src.position(offs[min(max(off, 0), len(offs)-1)])
	p.errs = append(p.errs, &Error{File: p.file, Line: pos.line, Col: pos.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// words splits s at spaces as strings.Fields does, with each word's byte
// offset, for atWord.
func words(s string) (ws []string, offs []int) {
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' || s[i] == '\t' {
			if start >= 0 {
				ws, offs = append(ws, s[start:i]), append(offs, start)
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return ws, offs
}

// sorted returns the errors in file order, each once: a default that
// several sections inherit (a global ssl-default-server-ciphers) is
// checked for each of them, but wrong in one place.
func (p *parser) sorted() ErrorList {
	slices.SortStableFunc(p.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return slices.CompactFunc(p.errs, func(a, b *Error) bool { return *a == *b })
}
