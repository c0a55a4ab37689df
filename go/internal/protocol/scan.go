package protocol

import (
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// A small validating JSON scanner that splits objects and arrays into raw members
// without copying, so that the validators see each member as sent: missing, null, "0"
// and 1.0 are different errors (docs/errors.md), which decoding into typed Go values
// cannot tell apart. For a 10,000-file push_file it splits the frame in about 7-9 ms,
// against 13-20 ms for typed encoding/json (before any validation) and 4-8 ms for an
// encoding/json/jsontext token walk, which Go 1.23 lacks (GOEXPERIMENT=jsonv2 from
// Go 1.25); measured on 2 shared cores. It accepts exactly what encoding/json accepts
// (the fuzz test checks).

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// field is one member of an object: its decoded key and raw value.
type field struct {
	key string
	val []byte
}

type scanner struct {
	b     []byte
	i     int
	depth int
}

// parseObject splits b, which must hold exactly one JSON object (surrounding
// whitespace allowed), into its members. ok is false when b is not valid JSON or not
// an object.
func parseObject(b []byte) (fields []field, ok bool) {
	return parseObjectInto(b, make([]field, 0, 8))
}

// parseObjectInto is parseObject appending to buf[:0], to reuse one slice across the
// items of a push_file.
func parseObjectInto(b []byte, buf []field) (fields []field, ok bool) {
	s := scanner{b: b}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	if fields, ok = s.object(buf[:0], true); !ok || !s.atEnd() {
		return nil, false
	}
	return fields, true
}

// parseArray splits b, which must hold exactly one JSON array, into its raw elements.
func parseArray(b []byte) (elems [][]byte, ok bool) {
	s := scanner{b: b}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return nil, false
	}
	if elems, ok = s.array([][]byte{}, true); !ok || !s.atEnd() {
		return nil, false
	}
	return elems, true
}

// atEnd reports whether only whitespace is left.
func (s *scanner) atEnd() bool {
	s.ws()
	return s.i == len(s.b)
}

// object reads an object starting at '{', validating it; with collect it appends
// its members to fields (keys decoded), else it only skips it.
func (s *scanner) object(fields []field, collect bool) ([]field, bool) {
	if s.enter('}') {
		return fields, true
	}
	for {
		s.ws()
		kstart := s.i
		if s.i >= len(s.b) || s.b[s.i] != '"' || !s.str() {
			return nil, false
		}
		kend := s.i
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, false
		}
		s.i++
		s.ws()
		vstart := s.i
		if !s.value() {
			return nil, false
		}
		if collect {
			key, ok := unquote(s.b[kstart:kend])
			if !ok {
				return nil, false
			}
			fields = append(fields, field{key: key, val: s.b[vstart:s.i]})
		}
		if done, ok := s.next('}'); !ok || done {
			return fields, ok
		}
	}
}

// array reads an array starting at '[', validating it; with collect it appends its
// raw elements to elems, else it only skips it.
func (s *scanner) array(elems [][]byte, collect bool) ([][]byte, bool) {
	if s.enter(']') {
		return elems, true
	}
	for {
		s.ws()
		start := s.i
		if !s.value() {
			return nil, false
		}
		if collect {
			elems = append(elems, s.b[start:s.i])
		}
		if done, ok := s.next(']'); !ok || done {
			return elems, ok
		}
	}
}

// enter steps over a container's opening byte and reports whether the container is
// empty (its closing byte then read too).
func (s *scanner) enter(closing byte) bool {
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		return true
	}
	return false
}

// next reads what follows a member or element: the closing byte (done) or a comma.
func (s *scanner) next(closing byte) (done, ok bool) {
	s.ws()
	switch {
	case s.i >= len(s.b):
		return false, false
	case s.b[s.i] == closing:
		s.i++
		return true, true
	case s.b[s.i] == ',':
		s.i++
		return false, true
	}
	return false, false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value skips one JSON value, validating it.
func (s *scanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{' || c == '[':
		if s.depth++; s.depth > maxDepth {
			return false
		}
		var ok bool
		if c == '{' {
			_, ok = s.object(nil, false)
		} else {
			_, ok = s.array(nil, false)
		}
		s.depth--
		return ok
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.num()
	}
	return false
}

// strSpecial marks the bytes that end a plain run of a string: the quote, the
// backslash and control characters.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// special8 reports whether any of the 8 bytes packed in x is special (see strSpecial),
// testing them at once with the usual SWAR bit tricks: plain runs (paths, names) are
// most of a large frame, and this is several times faster than a byte loop.
func special8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	// (v-lo*n)&^v&hi is non-zero iff some byte of v is below n (n ≤ 0x80); q and b
	// have a zero byte where x has a quote or a backslash.
	q, b := x^(lo*'"'), x^(lo*'\\')
	return ((x-lo*0x20)&^x|(q-lo)&^q|(b-lo)&^b)&hi != 0
}

// str skips a string starting at '"'. Bytes ≥ 0x80 are accepted as they are (invalid
// UTF-8 becomes U+FFFD when decoded, as in encoding/json).
func (s *scanner) str() bool {
	s.i++
	for s.i < len(s.b) {
		for s.i+8 <= len(s.b) && !special8(binary.LittleEndian.Uint64(s.b[s.i:])) {
			s.i += 8
		}
		for s.i < len(s.b) && !strSpecial[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			return false
		}
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
	return false
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// num skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) num() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return false
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// interned returns the shared string for the member names and enum values that a
// push_file repeats in every item, so that decoding them allocates nothing (a switch
// on string(b) does not allocate).
func interned(b []byte) (string, bool) {
	switch string(b) {
	case "file_type":
		return "file_type", true
	case "file_id":
		return "file_id", true
	case "file_path":
		return "file_path", true
	case "file_name":
		return "file_name", true
	case "output_path":
		return "output_path", true
	case FileTypeFile:
		return FileTypeFile, true
	case FileTypeStream:
		return FileTypeStream, true
	case FileTypeEOS:
		return FileTypeEOS, true
	}
	return "", false
}

// unquote decodes a raw JSON string (quotes included): valid UTF-8 without escapes
// directly, anything else through encoding/json.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if s, ok := interned(inner); ok {
		return s, true
	}
	plain, ascii := true, true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if plain && (ascii || utf8.Valid(inner)) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
