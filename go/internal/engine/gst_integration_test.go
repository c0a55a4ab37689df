package engine

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// makeClip encodes frames of 640×360 30 fps H.264 into path with the given muxer.
func makeClip(t *testing.T, path, mux string, frames int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := strings.Fields(fmt.Sprintf("-q videotestsrc num-buffers=%d pattern=smpte ! "+
		"video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! "+
		"x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! %s ! filesink", frames, mux))
	args = append(args, "location="+path)
	if out, err := exec.CommandContext(ctx, "gst-launch-1.0", args...).CombinedOutput(); err != nil {
		t.Fatalf("gst-launch-1.0: %v\n%s", err, out)
	}
}

// eventWaiter collects events until one matches.
type eventWaiter struct {
	t   *testing.T
	e   *Engine
	all []Event
}

func (w *eventWaiter) until(desc string, match func(Event) bool) Event {
	w.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-w.e.Events():
			if !ok {
				w.t.Fatalf("events closed while waiting for %s; got %+v", desc, w.all)
			}
			w.all = append(w.all, ev)
			if match(ev) {
				return ev
			}
		case <-timeout:
			w.t.Fatalf("no %s within 20s; got %+v", desc, w.all)
		}
	}
}

func TestGstEngineIntegration(t *testing.T) {
	bin := os.Getenv("DS_GST_ENGINE")
	if bin == "" {
		t.Skip("DS_GST_ENGINE is not set (make test-go sets it to bin/ds-gst-engine)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("DS_GST_ENGINE: %v", err)
	}
	dir := shortDir(t)
	clip := filepath.Join(dir, "clip.mp4")
	stream := filepath.Join(dir, "clip.ts")
	makeClip(t, clip, "mp4mux", 60)
	makeClip(t, stream, "mpegtsmux", 150)
	cfgPath := filepath.Join(dir, "two-slots.txt")
	cfgText := "[application]\nenable-perf-measurement=0\n\n" +
		"[source0]\nenable=1\ntype=3\nuri=file:///dev/null\nnum-sources=2\ngpu-id=0\n\n" +
		"[sink0]\nenable=1\ntype=1\nsync=0\n"
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}

	out, logs := &syncBuffer{}, &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine output:\n%s\nsupervisor log:\n%s", out, logs)
		}
	})
	cfg := Config{Binary: bin, ConfigPath: cfgPath, SocketPath: filepath.Join(dir, "e.sock"), Output: out,
		StartTimeout: 20 * time.Second, Log: zerolog.New(logs).Level(zerolog.DebugLevel)}
	e, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &eventWaiter{t: t, e: e}

	h := e.Hello()
	if !h.Ready || h.Engine != "gst" || h.Protocol != 1 || h.Streams != 2 || h.ConfigPath != cfgPath ||
		fmt.Sprint(h.GPUIDs) != "[0]" || h.Version == "" {
		t.Fatalf("hello = %+v", h)
	}

	// Two files of one camera: the camera frame index continues.
	for i, fid := range []int64{1, 2} {
		outPath := filepath.Join(dir, fmt.Sprintf("out%d.txt", fid))
		err := e.Play(ctx, PlayRequest{Slot: 0, FileID: fid, URI: "file://" + clip, NewCamera: i == 0, OutputPath: outPath})
		if err != nil {
			t.Fatal(err)
		}
		started := w.until("file_started", func(ev Event) bool { return ev.FileID == fid })
		done := w.until("file_done", func(ev Event) bool { return ev.FileID == fid })
		if started.Kind != "file_started" || started.Slot != 0 || done.Kind != "file_done" || done.Slot != 0 ||
			done.Frames != 60 || done.CameraFrames != uint64(60*(i+1)) || done.MonoNS < started.MonoNS ||
			done.Seq <= started.Seq {
			t.Fatalf("file %d: started %+v done %+v", fid, started, done)
		}
		lines := strings.Split(strings.TrimSpace(readFile(t, outPath)), "\n")
		if len(lines) != 60 || !strings.HasPrefix(lines[0], fmt.Sprintf("%d 0 ", 60*i)) ||
			!strings.HasPrefix(lines[59], fmt.Sprintf("%d 59 ", 60*i+59)) {
			t.Fatalf("output of file %d: %d lines, first %q last %q", fid, len(lines), lines[0], lines[len(lines)-1])
		}
	}
	if err := e.Reset(ctx, 0); err != nil {
		t.Fatal(err)
	}

	// A missing file is accepted, then reported.
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 3, URI: "file://" + filepath.Join(dir, "missing.mp4")}); err != nil {
		t.Fatal(err)
	}
	if ev := w.until("file_error", func(ev Event) bool { return ev.FileID == 3 }); ev.Kind != "file_error" || ev.Error == "" || ev.Slot != 1 {
		t.Fatalf("missing file: %+v", ev)
	}

	// A stream that stalls half-way through (an HTTP server that sends part of an
	// MPEG-TS file and then holds the connection) stays playing until stopped.
	ts, err := os.ReadFile(stream)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "video/mp2t")
		_, _ = rw.Write(ts[:len(ts)/2])
		rw.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 4, URI: srv.URL + "/live.ts", NewCamera: true}); err != nil {
		t.Fatal(err)
	}
	w.until("file_started of the stream", func(ev Event) bool { return ev.FileID == 4 })
	var prog []SlotProgress
	deadline := time.Now().Add(20 * time.Second)
	for {
		if prog, err = e.Progress(ctx); err != nil {
			t.Fatal(err)
		}
		if p := prog[1]; p.State == "playing" && p.FileID != nil && *p.FileID == 4 && p.Frames >= 30 && p.PositionNS != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream never progressed: %+v", prog[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if prog[0].State != "idle" || prog[0].FileID != nil || prog[0].Frames != 60 {
		t.Fatalf("slot 0 progress: %+v", prog[0])
	}
	st, err := e.Stop(ctx, 1)
	if err != nil || !st.WasPlaying || st.FileID != 4 || st.Frames < 30 || st.Frames >= 150 {
		t.Fatalf("Stop = %+v, %v", st, err)
	}
	t.Logf("stream stopped after %d frames (progress said %d at %dns)", st.Frames, prog[1].Frames, *prog[1].PositionNS)
	// The slot is usable again, and nothing more is heard of the stopped file.
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 5, URI: "file://" + clip, NewCamera: true}); err != nil {
		t.Fatal(err)
	}
	if ev := w.until("file_done of the next file", func(ev Event) bool { return ev.FileID == 5 && ev.Kind == "file_done" }); ev.CameraFrames != 60 {
		t.Fatalf("after stop: %+v", ev)
	}
	for _, ev := range w.all {
		if ev.FileID == 4 && ev.Seq > st.Seq {
			t.Fatalf("event for the stopped file after the stop reply: %+v", ev)
		}
	}

	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := e.ExitStatus(); st.Code != 0 {
		t.Fatalf("exit status %s", st)
	}
	drain(e.Events())
	if _, err := os.Stat(cfg.SocketPath); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}
