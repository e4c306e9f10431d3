package rules

import "unsafe"

// bytesString views b as a string without copying, for lookups in maps
// and parsers that take strings; the string must not outlive b's
// contents.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// BytesString views b as a string without copying, for a map lookup by a
// name a format computed.
func BytesString(b []byte) string { return bytesString(b) }

// strBytesOf views s as bytes without copying; they must not be changed.
func strBytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
