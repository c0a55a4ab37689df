package protocol

import "fmt"

// Encode marshals a message of this package into one JSON object with "type" first.
// It never fails: a value that cannot be encoded (a NaN float, a nil pointer, a foreign
// type) yields a generic error message saying so, so the caller always has a frame to
// send.
func Encode(msg any) []byte {
	b, err := encode(msg)
	if err == nil {
		return b
	}
	b, _ = marshalTyped(TypeError, ErrorMessage{Status: StatusError, ErrorCode: CodeInternal,
		ErrorReason: "internal error: cannot encode reply: " + err.Error()}.body())
	return b
}

func encode(msg any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil { // a nil *T message
			b, err = nil, fmt.Errorf("%T: %v", msg, r)
		}
	}()
	if a, ok := msg.(appender); ok {
		if b, ok := a.appendJSON(make([]byte, 0, a.size()+seqRoom)); ok {
			return b, nil
		}
	}
	m, ok := msg.(typed)
	if !ok {
		return nil, fmt.Errorf("%T is not a protocol message", msg)
	}
	// Straight to the body: a MarshalJSON method would make encoding/json re-scan
	// the whole output (a large analysis_status) once more.
	return marshalTyped(m.MessageType(), m.body())
}
