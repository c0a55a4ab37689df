package link

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/cityeyelab/ds-analysis/go/internal/queue"
)

// item is one message given to Send. Its seq is assigned when it is first
// written and kept from then on, so a message whose write failed is sent again
// under the same seq and the server can recognise the duplicate.
type item struct {
	ticket uint64 // position in Send order, 1-based
	obj    []byte // the object as given; nil once frame is built
	seq    uint64 // 0 until the first write attempt
	frame  []byte // obj with "seq" spliced in
}

// sentFrame is a written message kept for redelivery.
type sentFrame struct {
	seq   uint64
	frame []byte
}

// ring keeps the last written messages in seq order, at most its capacity of
// them and, beyond the newest one, at most maxBytes.
type ring struct {
	frames   *queue.Ring[sentFrame]
	bytes    int64
	maxBytes int64
	evicted  uint64 // highest seq pushed out of the ring
}

func newRing(capacity int, maxBytes int64) ring {
	return ring{frames: queue.NewRing[sentFrame](capacity), maxBytes: maxBytes}
}

func (r *ring) add(seq uint64, frame []byte) {
	size := int64(len(frame))
	for r.frames.Len() > 0 && (r.frames.Len() == r.frames.Cap() || r.bytes+size > r.maxBytes) {
		old, _ := r.frames.PopOldest()
		r.evicted, r.bytes = old.seq, r.bytes-int64(len(old.frame))
	}
	r.frames.Push(sentFrame{seq: seq, frame: frame})
	r.bytes += size
}

// after returns the kept frames whose seq is greater than last, oldest first.
func (r *ring) after(last uint64) []sentFrame {
	var out []sentFrame
	for i := 0; i < r.frames.Len(); i++ {
		if f := r.frames.At(i); f.seq > last {
			out = append(out, f)
		}
	}
	return out
}

var errNotObject = errors.New("not a JSON object")

// checkObject reports whether obj is framed as one JSON object, which is what withSeq
// needs. Callers pass encoder output; a full json.Valid would cost as much again as
// encoding a large analysis_status (it was a sixth of the supervisor's CPU under load).
func checkObject(obj []byte) error {
	t := bytes.TrimSpace(obj)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return errNotObject
	}
	return nil
}

// withSeq returns the JSON object obj with "seq":seq added as its last
// member. obj belongs to the link: when it is exactly "{…}" with room after
// it, the seq is written over its closing brace in place (a large reply is
// not copied), else into a copy. obj must have passed checkObject.
func withSeq(obj []byte, seq uint64) []byte {
	t := bytes.TrimSpace(obj)
	body := bytes.TrimSpace(t[1 : len(t)-1])
	var out []byte
	if len(t) == len(obj) && len(body) == len(obj)-2 && cap(obj)-len(obj) >= 28 {
		out = obj[:len(obj)-1] // 28: `,"seq":`, 20 digits and '}'
	} else {
		out = make([]byte, 0, len(t)+28)
		out = append(out, '{')
		out = append(out, body...)
	}
	if len(body) > 0 {
		out = append(out, ',')
	}
	out = append(out, `"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	return append(out, '}')
}
