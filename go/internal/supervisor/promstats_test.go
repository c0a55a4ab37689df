package supervisor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
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

// TestPromStatsTimings: time to first frame from the play, speed from the duration a
// progress reply showed over the wall time from the play to the end; nothing for
// another file's events, a second file_started, or a file whose duration was never seen.
func TestPromStatsTimings(t *testing.T) {
	var p promStats
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	id := func(v int64) *int64 { return &v }
	dur := int64(2e9)

	p.played(0, 5, at(0))
	p.firstFrame(0, 6, at(10)) // not the file played
	p.firstFrame(0, 5, at(20))
	p.firstFrame(0, 5, at(30)) // once per file
	p.progress([]engine.SlotProgress{{Slot: 0, State: "playing", FileID: id(5), DurationNS: &dur}})
	p.ended(0, 5, at(500)) // 2 s in 0.5 s: 4 × real time
	p.ended(0, 5, at(900)) // once

	p.played(0, 6, at(1000))
	p.progress([]engine.SlotProgress{{Slot: 0, State: "playing", FileID: id(5), DurationNS: &dur}}) // a stale reply
	p.ended(0, 6, at(1100))                                                                         // duration unknown

	s := p.slots[0]
	if s.firstFrame.Count() != 1 || s.speed.Count() != 1 {
		t.Fatalf("first frames %d, speeds %d", s.firstFrame.Count(), s.speed.Count())
	}
	if got := s.firstFrame.Sum(); got != 0.02 {
		t.Errorf("time to first frame %v, want 0.02", got)
	}
	if got := s.speed.Sum(); got != 4 {
		t.Errorf("speed %v, want 4", got)
	}
}

// TestErrorClass: the engines' file_error texts of docs/errors.md, by class.
func TestErrorClass(t *testing.T) {
	for text, want := range map[string]string{
		"Resource not found.":                                  promexport.ErrInput,
		"Could not determine type of stream.":                  promexport.ErrInput,
		"no video stream":                                      promexport.ErrInput,
		"no video frames decoded":                              promexport.ErrInput,
		"not a regular file: /x/cam.mp4":                       promexport.ErrInput,
		"path did not answer within 5000 ms: /mnt/nas/cam.mp4": promexport.ErrInput,
		"the source failed to start":                           promexport.ErrInput,
		"slot 0 busy (file 12)":                                promexport.ErrEngine,
		"the source did not start in time":                     promexport.ErrStalled,
		"no video frame within 5000 ms":                        promexport.ErrStalled,
		"stalled: no video frame for 5000 ms":                  promexport.ErrStalled,
		"only 12 of 60 frames came out of the pipeline after the file ended (output incomplete)": promexport.ErrStalled,
		"cannot open output /x/y.txt: not a regular file":                                        promexport.ErrOutput,
		"cannot write output /x/y.txt: No space left on device":                                  promexport.ErrOutput,
	} {
		if got := errorClass(text); got != want {
			t.Errorf("%q: %s, want %s", text, got, want)
		}
	}
	var p promStats
	p.gaveUpOn(1, 30)
	if got := p.engineErrorClass(1, 30, "rtsp: not found (404): not retried"); got != promexport.ErrLive {
		t.Errorf("after the last stream_lost: %s", got)
	}
	if got := p.engineErrorClass(1, 31, "Resource not found."); got != promexport.ErrInput {
		t.Errorf("the next file: %s", got)
	}
	for _, slot := range []int{-1, 2, 1 << 30} { // an engine's event for no slot of ours
		if got := p.engineErrorClass(slot, 30, "x"); got != promexport.ErrInput || len(p.slots) != 2 {
			t.Errorf("slot %d: %s, %d slots", slot, got, len(p.slots))
		}
	}
}

// The exporter's per-file timings from a running loop: with no liveness ticks at all,
// the progress call each file_started asks for still learns the duration of files that
// play for 30 ms; a wedged slot shows how long its queued file has waited.
func TestFakeFileTimings(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, fileTime: 30 * time.Millisecond, probe: time.Hour})
	e := f.engine(0)
	out := filepath.Join(f.dir, "out")
	e.Wedge(1, true)
	s2, p2 := fileset(1, 2, out, 21, 22)
	before := time.Now()
	f.srv.Send(s2)
	f.srv.Send(p2)
	playing(t, e, 1, 21)

	s1, p1 := fileset(0, 1, out, 11, 901, 12, 13)
	f.srv.Send(s1)
	f.srv.Send(p1)
	for {
		if m := f.srv.Expect("analysis_complete", nil); m["camera_id"] == float64(1) {
			break
		}
	}
	snap := f.snapshot()
	s0, s1s := snap.Slots[0], snap.Slots[1]
	if n := s0.FirstFrame.Count(); n != 3 {
		t.Errorf("slot 0: %d times to first frame, want 3 (the bad file has none)", n)
	}
	if n := s0.Speed.Count(); n != 3 {
		t.Fatalf("slot 0: %d speeds, want 3", n)
	}
	// 1 s (the fake's duration) in a bit more than 30 ms.
	if mean := s0.Speed.Sum() / 3; mean > 1.0/0.030 || mean < 5 {
		t.Errorf("slot 0: mean speed %.1f, want a bit under 33", mean)
	}
	if s0.FilesFailed != 1 || s0.FileErrors[promexport.ErrInput] != 1 || s0.OldestQueuedAge != 0 {
		t.Errorf("slot 0: failed %d, by class %v, oldest queued %v", s0.FilesFailed, s0.FileErrors, s0.OldestQueuedAge)
	}
	if s1s.FirstFrame.Count() != 1 || s1s.Speed.Count() != 0 || !s1s.Busy || s0.Busy {
		t.Errorf("slot 1: %d first frames, %d speeds, busy %v (slot 0 %v)", s1s.FirstFrame.Count(), s1s.Speed.Count(), s1s.Busy, s0.Busy)
	}
	if age := s1s.OldestQueuedAge; age <= 0 || age > time.Since(before) {
		t.Errorf("slot 1: file 22 waited %v, at most %v", age, time.Since(before))
	}
	later := f.snapshot().Slots[1].OldestQueuedAge
	if later <= s1s.OldestQueuedAge {
		t.Errorf("slot 1: the wait did not grow: %v then %v", s1s.OldestQueuedAge, later)
	}
}

// Each failed file counts under the class of where it failed, and the classes add up to
// ds_analysis_files_failed_total on every slot: a bad file (input), a live source its
// server refuses (live), a wedged slot (stalled), a crash with files in flight (engine).
func TestFakeFileErrorClasses(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 3, restarts: 2, probe: testProbe, stall: testStall})
	e := f.engine(0)
	out := filepath.Join(f.dir, "out")
	s0, p0 := fileset(0, 1, out, 901, 2, 3)
	f.srv.Send(s0)
	f.srv.Send(p0)
	playing(t, e, 0, 2)
	f.srv.Send(videostream(1, 5, "rtsp://127.0.0.1:8554/404", out))
	for {
		if m := f.srv.Expect("analysis_complete", nil); m["camera_id"] == float64(5) {
			break
		}
	}
	e.Wedge(2, true)
	s2, p2 := fileset(2, 7, out, 71, 72)
	f.srv.Send(s2)
	f.srv.Send(p2)
	if m := f.srv.Expect("file_error", nil); m["file_id"] != float64(71) {
		t.Fatalf("file_error %v, want the stalled file 71", m)
	}
	playing(t, e, 2, 72)
	e.Crash("SIGSEGV") // files 2 (slot 0) and 72 (slot 2) in flight
	f.srv.Expect("engine_restarted", nil)

	want := []map[string]uint64{
		{promexport.ErrInput: 1, promexport.ErrEngine: 1},
		{promexport.ErrLive: 1},
		{promexport.ErrStalled: 1, promexport.ErrEngine: 1},
	}
	snap := f.snapshot()
	for i, sl := range snap.Slots {
		var sum uint64
		for _, class := range promexport.ErrorClasses {
			sum += sl.FileErrors[class]
			if sl.FileErrors[class] != want[i][class] {
				t.Errorf("slot %d: %s %d, want %d", i, class, sl.FileErrors[class], want[i][class])
			}
		}
		if sum != sl.FilesFailed || len(sl.FileErrors) > len(promexport.ErrorClasses) {
			t.Errorf("slot %d: classes %v add up to %d, files failed %d", i, sl.FileErrors, sum, sl.FilesFailed)
		}
	}
}

// The frame rate between two scrapes counts the frames of every file that ended in
// between, not only a file that plays at both scrapes: a slot of files shorter than the
// scrape interval is not at 0 frames per second.
func TestFakeFPSCountsShortFiles(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, fileTime: 5 * time.Millisecond, probe: time.Hour})
	first := f.snapshot()
	t0 := time.Now()
	s, p := fileset(0, 1, filepath.Join(f.dir, "out"), 1, 2, 3, 4)
	f.srv.Send(s)
	f.srv.Send(p)
	f.srv.Expect("analysis_complete", nil)
	second := f.snapshot()
	dt := time.Since(t0).Seconds()
	// The fake's files have 30 frames each.
	if fps := second.Slots[0].FPS; fps < 120/dt*0.9 || second.Slots[0].Frames != 120 {
		t.Errorf("slot 0: %.0f frames per second, %d frames in %.3f s (first scrape %.0f)", fps, second.Slots[0].Frames, dt, first.Slots[0].FPS)
	}
	if fps := second.Slots[1].FPS; fps != 0 {
		t.Errorf("idle slot 1: %.1f frames per second", fps)
	}
	if fps := f.snapshot().Slots[0].FPS; fps != 0 {
		t.Errorf("slot 0 after its camera: %.1f frames per second", fps)
	}
}
