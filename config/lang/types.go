package lang

// Type is the type of a sample, as HAProxy's sample types.
type Type uint8

// The sample types. Any is var()'s: its type is the stored value's.
const (
	TypeBool Type = iota + 1
	TypeInt
	TypeIP // IPv4 or IPv6
	TypeStr
	TypeBin
	TypeMeth // an HTTP method: matched as a string
	TypeAny
)

func (t Type) String() string {
	switch t {
	case TypeBool:
		return "boolean"
	case TypeInt:
		return "integer"
	case TypeIP:
		return "address"
	case TypeStr:
		return "string"
	case TypeBin:
		return "binary"
	case TypeMeth:
		return "method"
	case TypeAny:
		return "any"
	}
	return "?"
}

// stringy reports whether a value of t converts to a string (every type
// does in HAProxy's casts, but a boolean only as 0/1).
func (t Type) stringy() bool { return t != TypeBool }

// ArgKind says what an argument of a fetch or converter is.
type ArgKind uint8

// The argument kinds.
const (
	ArgStr      ArgKind = iota + 1
	ArgInt              // a decimal integer, possibly negative
	ArgBackend          // a backend's name
	ArgServer           // BACKEND/SERVER
	ArgVar              // a variable: txn.NAME, req.NAME, res.NAME, sess.NAME, proc.NAME
	ArgTable            // a stick table: the section that declares it
	ArgRegex            // an RE2 regular expression
	ArgFile             // a map file, relative to the configuration file
	ArgUserlist         // a userlist's name
	ArgFrontend         // a frontend's name
	ArgIPMask           // an IPv4 mask: a prefix length or a dotted mask
)

// Where says where a fetch can be used: in which rule sets its data
// exists. A fetch used where its data does not exist is a config error,
// as in HAProxy ("fetch method 'status' extracts information from
// 'response headers', none of which is available here").
type Where uint8

// The places.
const (
	AtConn     Where = 1 << iota // tcp-request connection: addresses only
	AtSession                    // tcp-request session: addresses and TLS
	AtContent                    // tcp-request content: the buffered start of the stream
	AtRequest                    // http-request, use_backend, redirect
	AtResponse                   // http-response
)

// Everywhere is every place; HTTP is both HTTP rule sets.
const (
	Everywhere = AtConn | AtSession | AtContent | AtRequest | AtResponse
	HTTP       = AtRequest | AtResponse
	inRequest  = AtContent | AtRequest | AtResponse // the request's data stays readable until the response
)

func (w Where) String() string {
	switch {
	case w&AtConn != 0:
		return "tcp-request connection"
	case w&AtSession != 0:
		return "tcp-request session"
	case w&AtContent != 0:
		return "tcp-request content"
	case w&AtRequest != 0:
		return "http-request"
	case w&AtResponse != 0:
		return "http-response"
	}
	return "?"
}

// argSpec is one argument of a fetch or converter.
type argSpec struct {
	kind     ArgKind
	optional bool
}

func req(k ArgKind) argSpec { return argSpec{kind: k} }
func opt(k ArgKind) argSpec { return argSpec{kind: k, optional: true} }

// Kind is the argument's kind.
func (a argSpec) Kind() ArgKind { return a.kind }

// Optional reports whether the argument may be left out.
func (a argSpec) Optional() bool { return a.optional }
