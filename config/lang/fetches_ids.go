package lang

// The fetches that identify a request rather than read one of its parts:
// hashes of its URL, its request line as received, the clock, random
// UUIDs and the unique ID of unique-id-format.

func init() {
	// base32 and url32 are HAProxy's SDBM hashes (with its avalanche) of
	// the Host and the path (base32) or the whole target (url32); +src
	// appends the client's address, for per-client, per-URL counters.
	def("base32", TypeInt, HTTP)
	def("base32+src", TypeBin, HTTP)
	def("url32", TypeInt, HTTP)
	def("url32+src", TypeBin, HTTP)
	// The request line as the client sent it, before any rule rewrote
	// it: readable in http-response too.
	def("capture.req.method", TypeStr, HTTP)
	def("capture.req.uri", TypeStr, HTTP)
	def("capture.req.ver", TypeStr, HTTP)
	def("date", TypeInt, Everywhere, opt(ArgInt), opt(ArgStr))
	def("uuid", TypeStr, Everywhere, opt(ArgInt))
	def("unique-id", TypeStr, HTTP)
}

// checkFetchArgs checks what an argument's kind cannot say: the values
// a fetch takes, at the argument's column.
func checkFetchArgs(e *errs, f *FetchDef, args []Arg) {
	switch f.Name {
	case "date":
		if len(args) > 1 && args[1].Set {
			switch args[1].Text {
			case "s", "ms", "us":
			default:
				e.at(args[1].Pos, "fetch date: unit %q is not s, ms or us", args[1].Text)
			}
		}
	case "uuid":
		// HAProxy 2.6 knows version 4 only (random), and refuses others.
		if len(args) > 0 && args[0].Set && args[0].Int != 4 {
			e.at(args[0].Pos, "fetch uuid: version %q is not supported (only 4)", args[0].Text)
		}
	}
}
