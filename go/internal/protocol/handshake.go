package protocol

import (
	"encoding/json"
	"strconv"
)

// HandshakeAck is what a client's handshake reads of an execute_ack (ReadHandshakeAck):
// whether it confirms, why it refuses, and the last_seq extension (docs/protocol.md).
type HandshakeAck struct {
	Status    string // StatusConfirmed confirms; any other value refuses
	ErrorCode string
	// ErrorMessage is error_message, or error_reason when error_message is empty.
	ErrorMessage string
	// LastSeq is last_seq as sent: nil when absent (see LastSeqNumber).
	LastSeq json.RawMessage
}

// ReadHandshakeAck reads frame as an execute_ack. Only "type" decides: ok is false for
// any other frame. Unlike Decode it refuses nothing: a member of the wrong JSON type
// reads as its raw JSON text, so that a malformed refusal still ends a handshake as a
// refusal instead of being retried forever.
func ReadHandshakeAck(frame []byte) (ack HandshakeAck, ok bool) {
	var m map[string]json.RawMessage
	var typ string
	if json.Unmarshal(frame, &m) != nil || json.Unmarshal(m["type"], &typ) != nil || typ != TypeExecuteAck {
		return HandshakeAck{}, false
	}
	str := func(k string) string {
		var v string
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &v) != nil {
			return string(raw)
		}
		return v
	}
	ack = HandshakeAck{Status: str("status"), ErrorCode: str("error_code"), ErrorMessage: str("error_message"),
		LastSeq: m["last_seq"]}
	if ack.ErrorMessage == "" {
		ack.ErrorMessage = str("error_reason")
	}
	return ack, true
}

// Confirmed reports whether the ack confirms the handshake.
func (a HandshakeAck) Confirmed() bool { return a.Status == StatusConfirmed }

// LastSeqNumber returns last_seq when it is a non-negative integer; ok is false when it
// is absent, null or anything else.
func (a HandshakeAck) LastSeqNumber() (n uint64, ok bool) {
	if len(a.LastSeq) == 0 || string(a.LastSeq) == "null" {
		return 0, false
	}
	n, err := strconv.ParseUint(string(a.LastSeq), 10, 64)
	return n, err == nil
}
