package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// request decodes frame as the loop does and makes it a Change.
func request(t *testing.T, frame string) Change {
	t.Helper()
	req, rej := protocol.Decode([]byte(frame), protocol.Limits{Streams: 2})
	if rej != nil {
		t.Fatalf("%s: %s", frame, rej.Reason())
	}
	return Request(req, []byte(frame), time.Now())
}

// open opens the store of instance "st" under root; closing the store and the
// directory is the caller's (a test that plays a crash does neither in order).
func open(t *testing.T, root string, resume bool) (*Store, *instance.Dir) {
	t.Helper()
	dir, err := instance.Open(root, "st")
	if err != nil {
		t.Fatal(err)
	}
	return Open(Options{Dir: dir, AppID: "st", Streams: 2, Resume: resume, Log: zerolog.Nop()}), dir
}

const (
	start = `{"type":"start_analysis","request_id":"s","stream_id":0,"camera_id":7,"camera_type":"fileset",
		"camera_path":"/v","camera_name":"c","output_dir":"/tmp/out"}`
	push = `{"type":"push_file","request_id":"p","stream_id":0,"camera_id":7,"files":[
		{"file_type":"file","file_id":1,"file_path":"/v/1.mp4"},{"file_type":"file","file_id":2,"file_path":"/v/2.mp4"},
		{"file_type":"file","file_id":3,"file_path":"/v/3.mp4"},{"file_type":"eos"}]}`
)

// A process that dies after some changes leaves a snapshot and a journal; the next one
// opened with resume has the same queues, and says what it took over.
func TestResumeReplaysTheJournal(t *testing.T) {
	root := t.TempDir()
	s, dir := open(t, root, false)
	s.Write(Info{EnginePID: 42})
	s.Apply(request(t, start))
	s.Apply(request(t, push))
	if res := s.Apply(Done(0, 1, 30)); !res.Changed {
		t.Fatalf("file_done of the playing file changed nothing: %+v", res)
	}
	s.Apply(Failed(0, 9, "not this slot's file")) // changes nothing: not journalled
	s.Apply(Hold())
	s.Apply(Lost("engine crashed"))
	s.Apply(Back())
	wantCams, wantFiles := s.State().Counts()
	s.journal.close() // killed: no snapshot of the changes, the journal as it is
	dir.Close()

	journal, err := os.ReadFile(filepath.Join(root, "st", "state.journal.1"))
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, line := range strings.Split(strings.TrimSpace(string(journal)), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		ops = append(ops, r.Op)
	}
	if got := strings.Join(ops, " "); got != "req req done hold lost back" {
		t.Fatalf("journal lines: %s\n%s", got, journal)
	}

	r, dir2 := open(t, root, true)
	defer dir2.Close()
	defer r.Close()
	res := r.Resumed()
	cams, _ := r.State().Counts()
	if res == nil || res.Cameras != wantCams || res.Files != wantFiles || res.FromPID != os.Getpid() {
		t.Fatalf("resumed %+v, want %d cameras and %d files", res, wantCams, wantFiles)
	}
	// Camera 7: file 1 done, file 2 lost with the engine, file 3 in the new engine.
	if cur, ok := r.State().CurrentFile(0); cams != 1 || !ok || cur != 3 {
		t.Fatalf("resumed state: %d cameras, slot 0 on file %d (%v); want 1 camera on file 3", cams, cur, ok)
	}
}

// A clean stop leaves nothing to resume; without resume, the previous state is kept
// as state.json.prev.
func TestCleanStopResumesNothing(t *testing.T) {
	root := t.TempDir()
	s, dir := open(t, root, false)
	s.Write(Info{})
	s.Apply(request(t, start))
	s.Save(Info{Clean: true})
	s.Close()
	dir.Close()

	r, dir2 := open(t, root, true)
	if r.Resumed() != nil {
		t.Fatalf("resumed %+v after a clean stop", r.Resumed())
	}
	r.Close()
	dir2.Close()

	_, dir3 := open(t, root, false)
	defer dir3.Close()
	if _, err := os.Stat(filepath.Join(root, "st", "state.json.prev")); err != nil {
		t.Fatalf("previous state not kept: %v", err)
	}
}
