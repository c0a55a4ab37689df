package link

import (
	"encoding/json"
	"testing"
)

func TestWithSeq(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{}`, `{"seq":7}`},
		{` { } `, `{"seq":7}`},
		{`{"type":"a"}`, `{"type":"a","seq":7}`},
		{" {\"type\":\"a\",\n \"x\":[1,{}] }\n", "{\"type\":\"a\",\n \"x\":[1,{}],\"seq\":7}"},
	} {
		if err := checkObject([]byte(tc.in)); err != nil {
			t.Fatalf("checkObject(%q) = %v", tc.in, err)
		}
		got := withSeq([]byte(tc.in), 7)
		if string(got) != tc.want || !json.Valid(got) {
			t.Errorf("withSeq(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// With spare capacity an exactly framed object gets its seq in place.
		roomy := append(make([]byte, 0, len(tc.in)+28), tc.in...)
		got = withSeq(roomy, 7)
		if string(got) != tc.want {
			t.Errorf("withSeq(%q with room) = %q, want %q", tc.in, got, tc.want)
		}
		framed := tc.in == `{}` || tc.in == `{"type":"a"}`
		if inPlace := &got[0] == &roomy[0]; inPlace != framed {
			t.Errorf("withSeq(%q with room): in place %v, want %v", tc.in, inPlace, framed)
		}
	}
	big := append(make([]byte, 0, 64), `{"a":1}`...)
	if got := withSeq(big, 18446744073709551615); string(got) != `{"a":1,"seq":18446744073709551615}` || &got[0] != &big[0] {
		t.Errorf("withSeq with the largest seq = %q", got)
	}
	for _, bad := range []string{``, `  `, `[]`, `"x"`, `{`, `{"a":1`, `{"a":1}x`, `null`} {
		if checkObject([]byte(bad)) == nil {
			t.Errorf("checkObject(%q) accepted", bad)
		}
	}
}

func TestRing(t *testing.T) {
	r := newRing(3, 1<<20)
	for s := uint64(1); s <= 5; s++ {
		r.add(s, []byte{byte('0' + s)})
	}
	if got := r.after(0); len(got) != 3 || string(got[0].frame) != "3" || string(got[2].frame) != "5" || got[2].seq != 5 {
		t.Fatalf("after(0) = %v", got)
	}
	if got := r.after(4); len(got) != 1 || string(got[0].frame) != "5" {
		t.Fatalf("after(4) = %v", got)
	}
	if r.evicted != 2 {
		t.Fatalf("evicted = %d, want 2", r.evicted)
	}

	// The byte limit evicts too, but always keeps the newest frame.
	r = newRing(100, 10)
	r.add(1, []byte("aaaa"))
	r.add(2, []byte("bbbb"))
	r.add(3, []byte("cccc"))
	if got := r.after(0); len(got) != 2 || string(got[0].frame) != "bbbb" || r.bytes != 8 || r.evicted != 1 {
		t.Fatalf("after the byte limit: %v, %d bytes, evicted %d", got, r.bytes, r.evicted)
	}
	r.add(4, []byte("0123456789abc"))
	if got := r.after(0); len(got) != 1 || string(got[0].frame) != "0123456789abc" || r.evicted != 3 {
		t.Fatalf("oversized frame: %v, evicted %d", got, r.evicted)
	}
}
