package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The test binary doubles as a fake engine speaking docs/engine-protocol.md, picked by
// fakeEnv; FAKE_MODE selects a misbehaviour:
//
//	normal      the protocol as specified
//	exit3       writes "bad config" to stderr and exits 3
//	nosocket    never opens its socket
//	noready     answers hello with ready=false and never sends ready
//	lateready   sends ready 100 ms after the hello reply
//	badprogress answers progress with a malformed payload
//	stubborn    ignores the shutdown op and SIGTERM
//	termok      ignores the shutdown op, exits 0 on SIGTERM
//
// An rtsp:// uri is a live source: progress reports its "live" object.
// FAKE_PROTOCOL overrides the protocol version. The
// uri of a play request scripts what follows it (see fake.play).
const fakeEnv = "ENGINE_TEST_FAKE"

type fake struct {
	mode    string
	conn    net.Conn
	w       *bufio.Writer
	playing map[int]string // slot → uri
	fileID  map[int]int64
	camera  map[int]uint64
}

func runFake() {
	mode := os.Getenv("FAKE_MODE")
	fmt.Fprintf(os.Stderr, "fake engine starting: %s mode %s\n", strings.Join(os.Args[1:], " "), mode)
	switch mode {
	case "exit3":
		fmt.Fprintln(os.Stderr, "bad config")
		os.Exit(3)
	case "nosocket":
		select {}
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	case "termok":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		go func() { <-c; os.Exit(0) }()
	}
	ln, err := net.Listen("unix", os.Getenv("DS_CONTROL_SOCKET"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f := &fake{mode: mode, playing: map[int]string{}, fileID: map[int]int64{}, camera: map[int]uint64{}}
	for {
		conn, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		f.serve(conn)
	}
}

func (f *fake) send(v any) {
	b, _ := json.Marshal(v)
	f.w.Write(append(b, '\n'))
	f.w.Flush()
}

func (f *fake) raw(s string) {
	f.w.WriteString(s + "\n")
	f.w.Flush()
}

type obj = map[string]any

func (f *fake) serve(conn net.Conn) {
	defer conn.Close()
	f.conn, f.w = conn, bufio.NewWriter(conn)
	if f.mode != "noready" && f.mode != "lateready" {
		f.send(obj{"event": "ready"})
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for sc.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Op     string          `json:"op"`
			Slot   *int            `json:"slot"`
			FileID int64           `json:"file_id"`
			URI    string          `json:"uri"`
			NewCam bool            `json:"new_camera"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			f.send(obj{"id": nil, "ok": false, "error": "malformed JSON: " + err.Error()})
			continue
		}
		id := req.ID
		fail := func(msg string) { f.send(obj{"id": id, "ok": false, "error": msg}) }
		if req.Slot != nil && (*req.Slot < 0 || *req.Slot > 1) && *req.Slot != 7 {
			fail(fmt.Sprintf("slot %d out of range (0..1)", *req.Slot))
			continue
		}
		switch req.Op {
		case "hello":
			proto := 1
			if p := os.Getenv("FAKE_PROTOCOL"); p != "" {
				proto, _ = strconv.Atoi(p)
			}
			f.send(obj{"id": id, "ok": true, "ready": f.mode != "noready" && f.mode != "lateready",
				"engine": "fake", "version": "0.1", "protocol": proto, "streams": 2,
				"config_path": "/abs/cfg.txt", "gpu_ids": []int{0, 1}})
			if f.mode == "lateready" {
				time.Sleep(100 * time.Millisecond)
				f.send(obj{"event": "ready"})
			}
		case "play":
			f.play(id, *req.Slot, req.FileID, req.URI, req.NewCam)
		case "stop":
			s := *req.Slot
			uri, busy := f.playing[s]
			delete(f.playing, s)
			switch {
			case busy && uri == "file:///racy":
				// The file ended just before the stop arrived.
				f.send(obj{"event": "file_done", "slot": s, "file_id": f.fileID[s], "frames": 3, "camera_frames": 3, "mono_ns": 1})
				f.send(obj{"id": id, "ok": true, "was_playing": false})
			case busy:
				f.send(obj{"id": id, "ok": true, "was_playing": true, "file_id": f.fileID[s], "frames": 10})
			default:
				f.send(obj{"id": id, "ok": true, "was_playing": false})
			}
		case "reset":
			switch {
			case *req.Slot == 7:
				f.send(obj{"id": nil, "ok": false, "error": "malformed JSON: simulated"})
			case f.playing[*req.Slot] != "":
				fail(fmt.Sprintf("slot %d busy", *req.Slot))
			default:
				f.camera[*req.Slot] = 0
				f.send(obj{"id": id, "ok": true})
			}
		case "progress":
			if f.mode == "badprogress" {
				f.send(obj{"id": id, "ok": true, "slots": "nope"})
				continue
			}
			var slots []obj
			for s := 0; s < 2; s++ {
				p := obj{"slot": s, "state": "idle", "file_id": nil, "position_ns": nil, "duration_ns": nil, "frames": 0, "camera_frames": f.camera[s]}
				if f.playing[s] != "" {
					p["state"], p["file_id"], p["position_ns"], p["duration_ns"], p["frames"] = "playing", f.fileID[s], 1000, 2000000000, 5
				}
				if strings.HasPrefix(f.playing[s], "rtsp://") {
					p["duration_ns"] = nil
					p["live"] = obj{"state": "reconnecting", "fps": 29.5, "last_frame_age_ms": 1500, "reconnects": 2}
				}
				slots = append(slots, p)
			}
			f.send(obj{"id": id, "ok": true, "slots": slots})
		case "shutdown":
			f.send(obj{"id": id, "ok": true})
			if f.mode != "stubborn" && f.mode != "termok" {
				os.Exit(0)
			}
		default:
			fail(fmt.Sprintf("unknown op %q", req.Op))
		}
	}
}

// Junk sent before the reply to a play of file:///garbage (fakeJunkLines lines).
var fakeJunk = []string{
	"not json",
	"[1,2]",
	"null",
	"{}",
	`{"foo":1}`,
	`{"id":99999,"ok":true}`,
	`{"id":"abc","ok":true}`,
	`{"event":"file_done"}`,
	`{"event":"weird","slot":0}`,
	`{"event":"file_done","slot":"x","file_id":1}`,
	strings.Repeat("x", 2<<20),
}

func (f *fake) play(id json.RawMessage, s int, fileID int64, uri string, newCam bool) {
	if f.playing[s] != "" {
		f.send(obj{"id": id, "ok": false, "error": fmt.Sprintf("slot %d busy", s)})
		return
	}
	if newCam {
		f.camera[s] = 0
	}
	switch uri {
	case "file:///done": // plays 60 frames at once
		f.send(obj{"id": id, "ok": true})
		f.camera[s] += 60
		f.send(obj{"event": "file_started", "slot": s, "file_id": fileID, "mono_ns": 100})
		f.send(obj{"event": "file_done", "slot": s, "file_id": fileID, "frames": 60, "camera_frames": f.camera[s], "mono_ns": 200})
	case "file:///hold", "file:///racy": // plays until stopped
		f.send(obj{"id": id, "ok": true})
		f.playing[s], f.fileID[s] = uri, fileID
		f.send(obj{"event": "file_started", "slot": s, "file_id": fileID, "mono_ns": 100})
	case "rtsp://cam/outage": // a live stream that drops and comes back
		f.send(obj{"id": id, "ok": true})
		f.playing[s], f.fileID[s] = uri, fileID
		f.send(obj{"event": "file_started", "slot": s, "file_id": fileID, "mono_ns": 100})
		f.send(obj{"event": "stream_lost", "slot": s, "file_id": fileID, "reason": "end of stream",
			"will_retry": true, "attempt": 1, "retry_in_ms": 1000})
		f.send(obj{"event": "stream_resumed", "slot": s, "file_id": fileID, "down_ms": 1234, "attempts": 1, "tracker_kept": true})
	case "rtsp://cam/down": // drops and waits to retry until stopped
		f.send(obj{"id": id, "ok": true})
		f.playing[s], f.fileID[s] = uri, fileID
		f.send(obj{"event": "stream_lost", "slot": s, "file_id": fileID, "reason": "connection refused",
			"will_retry": true, "attempt": 3, "retry_in_ms": 4000})
	case "file:///garbage":
		for _, j := range fakeJunk {
			f.raw(j)
		}
		f.send(obj{"id": id, "ok": true})
		f.send(obj{"event": "file_error", "slot": s, "file_id": fileID, "error": "Could not determine type"})
	case "file:///flood": // many events at once
		f.send(obj{"id": id, "ok": true})
		for i := 0; i < 10000; i++ {
			f.send(obj{"event": "file_error", "slot": s, "file_id": int64(i), "error": "flood"})
		}
	case "file:///slowreply":
		time.Sleep(300 * time.Millisecond)
		f.send(obj{"id": id, "ok": true})
		f.send(obj{"event": "file_error", "slot": s, "file_id": fileID, "error": "late"})
	case "file:///fatal":
		f.send(obj{"id": id, "ok": true})
		f.send(obj{"event": "fatal", "error": "pipeline broke"})
		os.Exit(1)
	case "":
		f.send(obj{"id": id, "ok": false, "error": `field "uri": expected non-empty string`})
	default:
		f.send(obj{"id": id, "ok": true})
		f.send(obj{"event": "file_error", "slot": s, "file_id": fileID, "error": "Resource not found"})
	}
}
