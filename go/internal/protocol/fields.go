package protocol

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// object reads the fields of one JSON object with exact type checks. base and idx name
// a nested object in errors ("init_file.", "files[3]."); they are formatted only when
// an error is reported, as a push_file holds thousands of items.
type object struct {
	f    []field
	base string
	idx  int // index in the base array, or -1
}

// name is the full name of a member for error messages.
func (o object) name(member string) string {
	switch {
	case o.base == "":
		return member
	case o.idx < 0:
		return o.base + "." + member
	}
	return fmt.Sprintf("%s[%d].%s", o.base, o.idx, member)
}

// lookup returns a member's raw value; with duplicate keys the last one wins, as in
// encoding/json.
func (o object) lookup(name string) (json.RawMessage, bool) {
	for i := len(o.f) - 1; i >= 0; i-- {
		if o.f[i].key == name {
			return o.f[i].val, true
		}
	}
	return nil, false
}

// get returns a field's raw value; an absent field and null both count as absent.
func (o object) get(name string) (json.RawMessage, bool) {
	raw, ok := o.lookup(name)
	if !ok || kind(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// str reads a string field. A required field must be present and a string; an
// optional one may be absent or null ("" then).
func (o object) str(name string, required bool) (string, bool, error) {
	raw, ok := o.lookup(name)
	if !ok {
		if required {
			return "", false, fmt.Errorf(`field "%s": missing`, o.name(name))
		}
		return "", false, nil
	}
	if kind(raw) == "null" && !required {
		return "", false, nil
	}
	s, isStr := unquote(raw)
	if !isStr {
		return "", false, fmt.Errorf(`field "%s": expected a string, got %s`, o.name(name), describe(raw))
	}
	return s, true, nil
}

// requestID reads the mandatory request_id: a non-empty string.
func (o object) requestID() (string, error) {
	s, _, err := o.str("request_id", true)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf(`field "request_id": empty string`)
	}
	return s, nil
}

// id reads a mandatory non-negative int64 (camera_id, file_id: inodes).
func (o object) id(name string) (int64, error) {
	raw, ok := o.lookup(name)
	if !ok {
		return 0, fmt.Errorf(`field "%s": missing`, o.name(name))
	}
	n, err := intValue(raw)
	if err != nil {
		return 0, fmt.Errorf(`field "%s": %w`, o.name(name), err)
	}
	if n < 0 {
		return 0, fmt.Errorf(`field "%s": %d is negative`, o.name(name), n)
	}
	return n, nil
}

// target reads the request_id, stream_id and camera_id that start_analysis, push_file
// and interrupt_analysis share, checked in that order.
func (o object) target(lim Limits) (reqID string, stream int, camera int64, err error) {
	if reqID, err = o.requestID(); err != nil {
		return
	}
	if stream, err = o.streamID(lim); err != nil {
		return
	}
	camera, err = o.id("camera_id")
	return
}

// streamID reads stream_id and checks it against the instance's slots.
func (o object) streamID(lim Limits) (int, error) {
	n, err := o.id("stream_id")
	if err != nil {
		return 0, err
	}
	if n >= int64(lim.Streams) {
		if lim.Streams <= 0 {
			return 0, fmt.Errorf(`field "stream_id": %d out of range (this instance has no streams)`, n)
		}
		return 0, fmt.Errorf(`field "stream_id": %d out of range (this instance has %d streams: 0..%d)`, n, lim.Streams, lim.Streams-1)
	}
	return int(n), nil
}

// optBool reads an optional boolean (nil when absent or null).
func (o object) optBool(name string) (*bool, error) {
	raw, ok := o.get(name)
	if !ok {
		return nil, nil
	}
	var b bool
	if kind(raw) != "bool" || json.Unmarshal(raw, &b) != nil {
		return nil, fmt.Errorf(`field "%s": expected a boolean, got %s`, o.name(name), describe(raw))
	}
	return &b, nil
}

// echoString returns a string field for an error reply, nil when unreadable.
func (o object) echoString(name string) *string {
	if raw, ok := o.lookup(name); ok {
		if s, isStr := unquote(raw); isStr {
			return &s
		}
	}
	return nil
}

// echoInt returns an integer field for an error reply, nil when unreadable.
func (o object) echoInt(name string) *int64 {
	if raw, ok := o.lookup(name); ok {
		if n, err := intValue(raw); err == nil {
			return &n
		}
	}
	return nil
}

// echoStream returns stream_id for an error reply, nil when unreadable.
func (o object) echoStream() *int {
	n := o.echoInt("stream_id")
	if n == nil || int64(int(*n)) != *n {
		return nil
	}
	return Int(int(*n))
}

// intValue parses a JSON integer into int64; strings, fractions, exponents, booleans
// and null are refused. The error names no field: callers wrap it.
func intValue(raw json.RawMessage) (int64, error) {
	if kind(raw) != "number" {
		return 0, fmt.Errorf("expected an integer, got %s", describe(raw))
	}
	n, err := strconv.ParseInt(string(trimSpace(raw)), 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("%s does not fit a 64-bit integer", trimSpace(raw))
		}
		return 0, fmt.Errorf("expected an integer, got %s", describe(raw))
	}
	return n, nil
}

// intField reads an integer member that is known to be present.
func intField(name string, raw json.RawMessage) (int64, error) {
	n, err := intValue(raw)
	if err != nil {
		return 0, fmt.Errorf(`field "%s": %w`, name, err)
	}
	return n, nil
}

// kind names the JSON kind of a (valid) raw value from its first byte.
func kind(raw json.RawMessage) string {
	t := trimSpace(raw)
	if len(t) == 0 {
		return "empty"
	}
	switch t[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// describe names a raw value for an error message, quoting short scalars.
func describe(raw json.RawMessage) string {
	t := trimSpace(raw)
	switch k := kind(t); k {
	case "object", "array", "empty":
		return map[string]string{"object": "an object", "array": "an array", "empty": "nothing"}[k]
	case "null":
		return "null"
	default:
		s := strings.ToValidUTF8(string(t), "\uFFFD")
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:37]) + "..."
		}
		if k == "bool" {
			k = "boolean"
		}
		return "a " + k + " " + s
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
