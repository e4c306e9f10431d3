package stats

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The three forms of "show stat": HAProxy's CSV (what the Prometheus
// exporter, hatop and the page's ;csv read), "typed" and "json".

// AppendCSVHeader appends the header line, "# pxname,svname,...".
func AppendCSVHeader(b []byte) []byte {
	b = append(b, "# "...)
	for f := Field(0); f < NumFields; f++ {
		if f == firstModuleField {
			b = append(b, "-,"...)
		}
		b = append(b, columns[f].name...)
		b = append(b, ',')
	}
	return append(b, '\n')
}

// AppendCSV appends one row, with a trailing comma as HAProxy writes it.
func (r *Row) AppendCSV(b []byte) []byte {
	for f := Field(0); f < NumFields; f++ {
		if f == firstModuleField {
			b = append(b, "-,"...)
		}
		v := r.v[f]
		switch {
		case !v.set:
		case v.isStr:
			b = appendCSVString(b, v.s)
		default:
			b = strconv.AppendInt(b, v.n, 10)
		}
		b = append(b, ',')
	}
	return append(b, '\n')
}

// appendCSVString writes s, quoting it when it holds a comma, a quote or a
// line break, as HAProxy's csv_enc does.
func appendCSVString(b []byte, s string) []byte {
	if !bytesAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func bytesAny(s, chars string) bool { return bytes.ContainsAny([]byte(s), chars) }

// CSV renders the table as "show stat" prints it.
func (t *Table) CSV() []byte {
	b := AppendCSVHeader(make([]byte, 0, 512+len(t.Rows)*256))
	for i := range t.Rows {
		b = t.Rows[i].AppendCSV(b)
	}
	return b
}

func (r *Row) tags(f Field) string {
	if o, ok := columns[f].over[r.Type]; ok {
		return o
	}
	return columns[f].tags
}

// Typed renders "show stat typed": one line per set field,
// "T.iid.sid.pos.name.1:TAGS:type:value".
func (t *Table) Typed() []byte {
	var b []byte
	for i := range t.Rows {
		r := &t.Rows[i]
		for f := Field(0); f < NumFields; f++ {
			v := r.v[f]
			if !v.set {
				continue
			}
			b = append(b, r.Type.letter(), '.')
			b = strconv.AppendInt(b, int64(r.IID), 10)
			b = append(b, '.')
			b = strconv.AppendInt(b, int64(r.SID), 10)
			b = append(b, '.')
			b = strconv.AppendInt(b, int64(f), 10)
			b = append(b, '.')
			b = append(b, columns[f].name...)
			b = append(b, ".1:"...)
			b = append(b, r.tags(f)...)
			b = append(b, ':')
			b = append(b, columns[f].typ.String()...)
			b = append(b, ':')
			b = v.appendTo(b)
			b = append(b, '\n')
		}
	}
	return b
}

// jsonField is one field of "show stat json", in HAProxy's schema.
type jsonField struct {
	ObjType    string       `json:"objType"`
	ProxyID    int          `json:"proxyId"`
	ID         int          `json:"id"`
	Field      jsonPosition `json:"field"`
	ProcessNum int          `json:"processNum"`
	Tags       jsonTags     `json:"tags"`
	Value      jsonValue    `json:"value"`
}

type jsonPosition struct {
	Pos  int    `json:"pos"`
	Name string `json:"name"`
}

type jsonTags struct {
	Origin string `json:"origin"`
	Nature string `json:"nature"`
	Scope  string `json:"scope"`
}

type jsonValue struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// The words "show stat json" and "show info json" spell the tag letters
// with.
var (
	originNames = map[byte]string{'M': "Metric", 'S': "Status", 'K': "Key", 'C': "Config", 'P': "Product"}
	natureNames = map[byte]string{'a': "Avg", 'A': "Age", 'C': "Counter", 'D': "Duration", 'G': "Gauge", 'L': "Limit",
		'M': "Max", 'm': "Min", 'N': "Name", 'O': "Output", 'R': "Rate"}
	scopeNames = map[byte]string{'C': "Cluster", 'P': "Process", 'S': "Service", 's': "System"}
)

func tagsOf(t string) jsonTags {
	return jsonTags{Origin: originNames[t[0]], Nature: natureNames[t[1]], Scope: scopeNames[t[2]]}
}

// JSON renders "show stat json": an array per row of its set fields.
func (t *Table) JSON() []byte {
	out := make([][]jsonField, 0, len(t.Rows))
	for i := range t.Rows {
		r := &t.Rows[i]
		fields := []jsonField{}
		for f := Field(0); f < NumFields; f++ {
			v := r.v[f]
			if !v.set {
				continue
			}
			jf := jsonField{ObjType: r.Type.objName(), ProxyID: r.IID, ID: r.SID, Field: jsonPosition{int(f), columns[f].name},
				ProcessNum: 1, Tags: tagsOf(r.tags(f)), Value: v.jsonValue(columns[f].typ)}
			fields = append(fields, jf)
		}
		out = append(out, fields)
	}
	b, _ := json.Marshal(out)
	return append(b, '\n')
}
