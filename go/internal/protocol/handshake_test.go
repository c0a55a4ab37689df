package protocol

import "testing"

func TestReadHandshakeAck(t *testing.T) {
	for _, tc := range []struct {
		frame     string
		ok        bool
		want      HandshakeAck
		confirmed bool
		last      uint64
		hasLast   bool
	}{
		{frame: `{"type":"query_metrics","status":"confirmed"}`},
		{frame: `not json`},
		{frame: `{"type":5}`},
		{frame: `{"type":"execute_ack","request_id":"r","status":"confirmed","last_seq":41}`, ok: true,
			want: HandshakeAck{Status: "confirmed", LastSeq: []byte("41")}, confirmed: true, last: 41, hasLast: true},
		{frame: `{"type":"execute_ack","status":"confirmed","last_seq":null}`, ok: true,
			want: HandshakeAck{Status: "confirmed", LastSeq: []byte("null")}, confirmed: true},
		{frame: `{"type":"execute_ack","status":"confirmed","last_seq":-1}`, ok: true,
			want: HandshakeAck{Status: "confirmed", LastSeq: []byte("-1")}, confirmed: true},
		{frame: `{"type":"execute_ack","status":"error","error_code":"CONFIG_MISMATCH","error_reason":"wrong config"}`, ok: true,
			want: HandshakeAck{Status: "error", ErrorCode: "CONFIG_MISMATCH", ErrorMessage: "wrong config"}},
		{frame: `{"type":"execute_ack","status":"error","error_message":"m","error_reason":"r"}`, ok: true,
			want: HandshakeAck{Status: "error", ErrorMessage: "m"}},
		// A malformed refusal is still a refusal, its members as their raw text.
		{frame: `{"type":"execute_ack","status":"error","error_code":5,"error_message":["no"]}`, ok: true,
			want: HandshakeAck{Status: "error", ErrorCode: "5", ErrorMessage: `["no"]`}},
		{frame: `{"type":"execute_ack","status":true}`, ok: true, want: HandshakeAck{Status: "true"}},
	} {
		got, ok := ReadHandshakeAck([]byte(tc.frame))
		if ok != tc.ok || got.Status != tc.want.Status || got.ErrorCode != tc.want.ErrorCode ||
			got.ErrorMessage != tc.want.ErrorMessage || string(got.LastSeq) != string(tc.want.LastSeq) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.frame, got, ok, tc.want, tc.ok)
			continue
		}
		last, hasLast := got.LastSeqNumber()
		if got.Confirmed() != tc.confirmed || last != tc.last || hasLast != tc.hasLast {
			t.Errorf("%s: confirmed %v, last_seq %d %v", tc.frame, got.Confirmed(), last, hasLast)
		}
	}
}
