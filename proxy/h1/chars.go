package h1

// Byte classes of RFC 9110/9112 and RFC 3986, as 256-entry tables so that
// the hot loops test one byte with one load.
var (
	isTchar      [256]bool // token characters (RFC 9110 5.6.2)
	isPlainName  [256]bool // token characters but '_', which classify must see
	isFieldValue [256]bool // field-vchar, obs-text, SP and HTAB (RFC 9110 5.5)
	isTargetChar [256]bool // what RFC 3986 allows in a request-target, less '#'
	isHostChar   [256]bool // uri-host and port: reg-name, IP-literal, ':'
	hexValue     [256]int8 // value of a hex digit, -1 for anything else
)

func init() {
	for c := 0; c < 256; c++ {
		hexValue[c] = -1
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		isTchar[c] = alnum || c < 128 && c > 0 && contains("!#$%&'*+-.^_`|~", byte(c))
		isPlainName[c] = isTchar[c] && c != '_'
		isFieldValue[c] = c == ' ' || c == '\t' || c >= 0x21 && c != 0x7f
		unreserved := alnum || c < 128 && c > 0 && contains("-._~", byte(c))
		subDelim := c < 128 && c > 0 && contains("!$&'()*+,;=", byte(c))
		isTargetChar[c] = unreserved || subDelim || c < 128 && c > 0 && contains(":/?[]@%", byte(c))
		isHostChar[c] = unreserved || subDelim || c == '%' || c == ':' || c == '[' || c == ']'
	}
	for c := '0'; c <= '9'; c++ {
		hexValue[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		hexValue[c] = int8(c - 'a' + 10)
		hexValue[c-'a'+'A'] = int8(c - 'a' + 10)
	}
}

func contains(set string, c byte) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
