package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
)

// An engine's life: start, play one file to its end, shut down. Here the test binary
// stands in for the engine (fake_test.go; its "file:///done" plays 60 frames at
// once); in production Binary is ds-gst-engine or the patched deepstream-app.
func Example() {
	dir, err := os.MkdirTemp("", "eng") // a short path: it holds the socket
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	eng, err := engine.Start(ctx, engine.Config{
		Binary:     os.Args[0],
		ConfigPath: "/abs/cfg.txt",
		SocketPath: filepath.Join(dir, "engine.sock"),
		Env:        []string{"ENGINE_TEST_FAKE=1", "GORACE=atexit_sleep_ms=0"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s engine, %d slots\n", eng.Hello().Engine, eng.Hello().Streams)

	err = eng.Play(ctx, engine.PlayRequest{Slot: 0, FileID: 1, URI: "file:///done", NewCamera: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev := range eng.Events() {
		fmt.Println(ev.Kind, "slot", ev.Slot, "file", ev.FileID, "frames", ev.Frames)
		if ev.Kind == engine.EventFileDone {
			break
		}
	}

	if err := eng.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println(eng.ExitStatus())
	// Output:
	// fake engine, 2 slots
	// file_started slot 0 file 1 frames 0
	// file_done slot 0 file 1 frames 60
	// exit code 0
}
