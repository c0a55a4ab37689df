package supervisor

import (
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// TestPromStatsCounting: files and frames per slot, a gap only between two files of
// one camera (not after a failure, not to a new camera), messages by type.
func TestPromStatsCounting(t *testing.T) {
	var p promStats
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p.sentMsg(&protocol.ProcessingStarted{StreamID: 1, CameraID: 7}, at(0))
	p.sentMsg(&protocol.FileDone{StreamID: 1, CameraID: 7, Frames: 30}, at(1000))
	p.sentMsg(&protocol.ProcessingStarted{StreamID: 1, CameraID: 7}, at(1004)) // gap 4 ms
	p.sentMsg(protocol.FileError{StreamID: 1, CameraID: 7}, at(1500))
	p.sentMsg(&protocol.ProcessingStarted{StreamID: 1, CameraID: 7}, at(1600)) // after a failure: none
	p.sentMsg(&protocol.FileDone{StreamID: 1, CameraID: 7, Frames: 20}, at(2000))
	p.sentMsg(&protocol.ProcessingStarted{StreamID: 1, CameraID: 8}, at(2001)) // new camera: none
	p.receivedMsg("push_file")
	p.receivedMsg("")

	s := p.slots[1]
	if s.done != 2 || s.failed != 1 || s.frames != 50 || s.gap.Count() != 1 {
		t.Fatalf("slot 1: done %d failed %d frames %d gaps %d", s.done, s.failed, s.frames, s.gap.Count())
	}
	if len(p.slots) != 2 || p.slots[0].done != 0 {
		t.Fatalf("slots %+v", p.slots)
	}
	if p.sent["processing_started"] != 4 || p.sent["file_done"] != 2 || p.sent["file_error"] != 1 ||
		p.received["push_file"] != 1 || p.received["invalid"] != 1 {
		t.Fatalf("sent %v received %v", p.sent, p.received)
	}
}
