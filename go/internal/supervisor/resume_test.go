package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/store"
)

// copyDir copies the files of src into a new dst: the instance dir as a process
// killed at this moment leaves it. The journals go first: a snapshot written while
// they are copied then covers what they lack (a snapshot is taken before its journal
// gets its first line), so the copy is always a state the process went through.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(entries, func(a, b os.DirEntry) int {
		ja, jb := strings.HasPrefix(a.Name(), "state.journal."), strings.HasPrefix(b.Name(), "state.journal.")
		switch {
		case ja && !jb:
			return -1
		case jb && !ja:
			return 1
		}
		return 0
	})
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".lock") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// stateSays waits until state.json satisfies ok.
func stateSays(t *testing.T, path string, ok func(store.File, map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		var st store.File
		var an struct {
			Analysis map[string]any `json:"analysis"`
		}
		if json.Unmarshal(b, &st) == nil && json.Unmarshal(b, &an) == nil {
			if ok(st, an.Analysis) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("state.json never got there: %s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killedMidCamera runs an instance until camera 1 (files 1..6) on slot 0 plays file
// 3 and camera 2 (files 21..22) waits behind it, camera 3 plays file 31 on slot 1,
// and returns the root of a copy of its instance dir: what a kill -9 leaves.
func killedMidCamera(t *testing.T) string {
	f := startFake(t, fakeOpts{streams: 2})
	e := f.engine(0)
	out := filepath.Join(f.dir, "out")
	s1, p1 := fileset(0, 1, out, 1, 901, 2, 3, 4, 5, 6)
	s2, p2 := fileset(0, 2, out, 21, 22)
	s3, p3 := fileset(1, 3, out, 31, 32)
	s4, _ := fileset(1, 4, out)
	for _, m := range []string{s1, p1, s2, p2, s3, p3, s4,
		`{"type":"interrupt_analysis","request_id":"i","stream_id":1,"camera_id":4}`} {
		f.srv.Send(m)
	}
	f.srv.Expect("analysis_interrupted", nil)
	playing(t, e, 0, 1)
	e.Finish(0, 1)
	playing(t, e, 0, 2)
	e.Finish(0, 2)
	playing(t, e, 0, 3)
	playing(t, e, 1, 31)
	// Changes after the last snapshot are in the journal only (the snapshot may lag
	// by 100 ms): copy at once, while file 3 plays.
	root := filepath.Join(t.TempDir(), "ds")
	copyDir(t, f.idir.Path(), filepath.Join(root, "fake"))
	return root
}

// A relaunch with --resume takes over the queues: the file in flight is reported,
// every other queued file plays exactly once, app_ready says what was resumed.
func TestFakeResume(t *testing.T) {
	root := killedMidCamera(t)
	f := startFake(t, fakeOpts{streams: 2, root: root, resume: true})
	res, _ := f.ready["resumed"].(map[string]any)
	// cameras 1, 2, 3 (4 was removed); files 4, 5, 6, 21, 22, 32 (3 and 31 were in
	// the engine)
	if res["cameras"] != float64(3) || res["files"] != float64(6) || res["from_pid"] != float64(os.Getpid()) {
		ents, _ := os.ReadDir(filepath.Join(root, "fake"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		logs, _ := filepath.Glob(filepath.Join(f.dir, "logs", "*", "*.log"))
		b, _ := os.ReadFile(logs[0])
		t.Fatalf("app_ready.resumed %v; %v\n%s", f.ready["resumed"], names, b)
	}
	e := f.engine(0)
	var seen []map[string]any
	for range 2 {
		m := f.srv.Expect("file_error", &seen)
		seen = append(seen, m)
		if m["error_reason"] != store.PrevDied || (m["file_id"] != float64(3) && m["file_id"] != float64(31)) {
			t.Fatalf("file_error %v", m)
		}
	}
	playing(t, e, 0, 4)
	playing(t, e, 1, 32)
	for _, p := range e.Plays() {
		if !p.NewCamera {
			t.Errorf("resumed play without a tracker reset: %+v", p)
		}
	}
	defer autoFinish(e, 0, 1)()
	for range 3 {
		seen = append(seen, f.srv.Expect("analysis_complete", &seen))
	}
	// Camera 1 played files 1, 901 (bad) and 2 before: they count, and do not play
	// again.
	var cam1 []string
	for _, m := range seen {
		if m["camera_id"] == float64(1) && m["type"] != "processing_started" {
			cam1 = append(cam1, fmt.Sprintf("%v:%v", m["type"], m["file_id"]))
			if m["type"] == "analysis_complete" && (m["processed_count"] != float64(5) || m["failed_count"] != float64(2)) {
				t.Errorf("camera 1: %v", m)
			}
		}
	}
	if got := strings.Join(cam1, " "); got != "file_error:3 file_done:4 file_done:5 file_done:6 analysis_complete:<nil>" {
		t.Errorf("camera 1 after the resume: %s", got)
	}
	var rest []map[string]any
	for _, m := range seen {
		if m["camera_id"] != float64(1) {
			rest = append(rest, m)
		}
	}
	checkOutcome(t, rest, map[int64][]int64{2: {21, 22}, 3: {31, 32}}, map[int64]bool{31: true})
	// A clean stop leaves nothing to resume.
	f.srv.Send(`{"type":"terminate_app","request_id":"t"}`)
	f.srv.Expect("app_terminated", nil)
	if c := f.exit(); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	stateSays(t, filepath.Join(root, "fake", "state.json"), func(st store.File, _ map[string]any) bool { return st.Clean })
}

// Without --resume the previous state is kept as state.json.prev and nothing resumed.
func TestFakeNoResume(t *testing.T) {
	root := killedMidCamera(t)
	prev, err := os.ReadFile(filepath.Join(root, "fake", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(t, fakeOpts{streams: 2, root: root})
	if _, ok := f.ready["resumed"]; ok {
		t.Fatalf("app_ready %v", f.ready)
	}
	kept, err := os.ReadFile(filepath.Join(root, "fake", "state.json.prev"))
	if err != nil || string(kept) != string(prev) {
		t.Fatalf("state.json.prev: %v", err)
	}
	f.srv.Send(`{"type":"query_analysis_status","request_id":"q"}`)
	st := f.srv.Expect("analysis_status", nil)
	for _, s := range st["streams"].([]any) {
		if s.(map[string]any)["status"] != "idle" {
			t.Fatalf("status %v", st)
		}
	}
	if n := len(f.engine(0).Plays()); n != 0 {
		t.Fatalf("%d plays", n)
	}
}

// The journal replays an engine loss and return too: a process that restarted its
// engine and then died resumes with the right files done, failed and queued.
func TestFakeResumeAfterEngineRestart(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 1})
	out := filepath.Join(f.dir, "out")
	s1, p1 := fileset(0, 1, out, 1, 2, 3, 4)
	f.srv.Send(s1)
	f.srv.Send(p1)
	playing(t, f.engine(0), 0, 1)
	f.engine(0).Crash("SIGSEGV")
	f.srv.Expect("engine_restarted", nil)
	e1 := f.engine(1)
	playing(t, e1, 0, 2)
	e1.Finish(0, 2)
	playing(t, e1, 0, 3)
	root := filepath.Join(t.TempDir(), "ds")
	copyDir(t, f.idir.Path(), filepath.Join(root, "fake"))

	g := startFake(t, fakeOpts{streams: 1, root: root, resume: true})
	if res, _ := g.ready["resumed"].(map[string]any); res["cameras"] != float64(1) || res["files"] != float64(1) {
		t.Fatalf("app_ready.resumed %v", g.ready["resumed"])
	}
	if m := g.srv.Expect("file_error", nil); m["file_id"] != float64(3) || m["error_reason"] != store.PrevDied {
		t.Fatalf("file_error %v", m)
	}
	e := g.engine(0)
	playing(t, e, 0, 4)
	e.Finish(0, 4)
	done := g.srv.Expect("analysis_complete", nil)
	if done["processed_count"] != float64(2) || done["failed_count"] != float64(2) {
		t.Fatalf("analysis_complete %v", done)
	}
}
