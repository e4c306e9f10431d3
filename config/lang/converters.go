package lang

import "strconv"

// ConvDef is a converter halo knows: HAProxy's name, its arguments, the
// type it takes and the one it gives.
type ConvDef struct {
	Name string
	In   Type
	Out  Type
	Args []argSpec
	// Map is set for the map converters: how keys match (map_beg:
	// MatchBeg) and the type of the value.
	Map *MapConv
}

// MapConv describes a map_* converter: map_<match>[_<out>].
type MapConv struct {
	Match Method
	Out   Type
}

var converters = map[string]*ConvDef{}

func conv(name string, in, out Type, args ...argSpec) *ConvDef {
	d := &ConvDef{Name: name, In: in, Out: out, Args: args}
	converters[name] = d
	return d
}

func init() {
	conv("lower", TypeStr, TypeStr)
	conv("upper", TypeStr, TypeStr)
	conv("base64", TypeBin, TypeStr)
	conv("b64dec", TypeStr, TypeBin)
	conv("hex", TypeBin, TypeStr)
	conv("url_dec", TypeStr, TypeStr, opt(ArgInt))
	conv("json", TypeStr, TypeStr, opt(ArgStr))
	conv("length", TypeStr, TypeInt)
	conv("field", TypeStr, TypeStr, req(ArgInt), req(ArgStr), opt(ArgInt))
	conv("word", TypeStr, TypeStr, req(ArgInt), req(ArgStr), opt(ArgInt))
	conv("bytes", TypeBin, TypeBin, req(ArgInt), opt(ArgInt))
	conv("regsub", TypeStr, TypeStr, req(ArgRegex), req(ArgStr), opt(ArgStr))
	conv("ipmask", TypeIP, TypeIP, req(ArgIPMask), opt(ArgInt))
	conv("add", TypeInt, TypeInt, req(ArgInt))
	conv("sub", TypeInt, TypeInt, req(ArgInt))
	conv("mul", TypeInt, TypeInt, req(ArgInt))
	conv("div", TypeInt, TypeInt, req(ArgInt))
	conv("mod", TypeInt, TypeInt, req(ArgInt))
	conv("neg", TypeInt, TypeInt)
	conv("not", TypeInt, TypeBool)
	conv("bool", TypeInt, TypeBool)
	conv("even", TypeInt, TypeBool)
	conv("odd", TypeInt, TypeBool)
	conv("ltrim", TypeStr, TypeStr, req(ArgStr))
	conv("rtrim", TypeStr, TypeStr, req(ArgStr))
	conv("concat", TypeStr, TypeStr, opt(ArgStr), opt(ArgVar), opt(ArgStr))
	for _, m := range []struct {
		name  string
		match Method
		in    Type
	}{
		{"str", MatchStr, TypeStr}, {"beg", MatchBeg, TypeStr}, {"sub", MatchSub, TypeStr},
		{"dir", MatchDir, TypeStr}, {"dom", MatchDom, TypeStr}, {"end", MatchEnd, TypeStr},
		{"reg", MatchReg, TypeStr}, {"ip", MatchIP, TypeIP}, {"int", MatchInt, TypeInt},
	} {
		for _, out := range []struct {
			suffix string
			t      Type
		}{{"", TypeStr}, {"_str", TypeStr}, {"_int", TypeInt}, {"_ip", TypeIP}} {
			name := "map_" + m.name + out.suffix
			if out.suffix == "" && m.name == "str" {
				conv("map", TypeStr, TypeStr, req(ArgFile), opt(ArgStr)).Map = &MapConv{MatchStr, TypeStr}
			}
			conv(name, m.in, out.t, req(ArgFile), opt(ArgStr)).Map = &MapConv{m.match, out.t}
		}
	}
}

// Converter returns the converter named name, or nil.
func Converter(name string) *ConvDef { return converters[name] }

// ConverterNames is every converter name, for docs and tests.
func ConverterNames() []string {
	var names []string
	for n := range converters {
		names = append(names, n)
	}
	return names
}

// castable reports whether a sample of type from can feed something that
// takes to, as HAProxy's cast table allows.
func castable(from, to Type) bool {
	if from == to || from == TypeAny || to == TypeAny {
		return true
	}
	switch to {
	case TypeStr, TypeBin:
		return true // every type prints
	case TypeInt:
		return from == TypeBool || from == TypeStr
	case TypeBool:
		return from == TypeInt || from == TypeStr
	case TypeIP:
		return from == TypeStr || from == TypeInt
	}
	return false
}

// MarshalJSON writes a converter as its name, for configuration dumps.
func (d *ConvDef) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.Name)), nil }
