package link_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/link"
	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
)

// An instance's side of the connection: app_ready on connecting, an event sent, a
// request received. The server here is linktest's, which confirms every handshake.
func Example() {
	srv := linktest.Start(linktest.Options{})
	defer srv.Close()

	l := link.New(link.Config{
		URL: srv.URL(),
		// The first message on every connection; the link adds "seq".
		Hello: func() []byte { return []byte(`{"type":"app_ready","request_id":"r1","instance_id":"cam_a"}`) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	// Send never blocks: the message waits in the outbox for a confirmed handshake.
	l.Send([]byte(`{"type":"processing_started","stream_id":0,"camera_id":7,"file_id":1}`))
	for range 2 {
		f, _ := srv.Next(10 * time.Second)
		fmt.Printf("server read %s\n", f.Raw)
	}

	// The server's requests come out of the Inbox.
	if err := srv.Write([]byte(`{"type":"query_metrics","request_id":"m1"}`)); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("instance read %s\n", <-l.Inbox())

	cancel() // closes the connection normally
	fmt.Println("Run returned", <-done)
	// Output:
	// server read {"type":"app_ready","request_id":"r1","instance_id":"cam_a","seq":1}
	// server read {"type":"processing_started","stream_id":0,"camera_id":7,"file_id":1,"seq":2}
	// instance read {"type":"query_metrics","request_id":"m1"}
	// Run returned <nil>
}

// A server that refuses the handshake ends Run with a *Rejected (the supervisor then
// exits with status 4).
func ExampleRejected() {
	srv := linktest.Start(linktest.Options{Ack: linktest.Reject})
	defer srv.Close()

	l := link.New(link.Config{URL: srv.URL(), Hello: func() []byte { return []byte(`{"type":"app_ready"}`) }})
	err := l.Run(context.Background())
	var rej *link.Rejected
	if errors.As(err, &rej) {
		fmt.Printf("%s: %s\n", rej.Code, rej.Message)
	}
	// Output: CONFIG_MISMATCH: Config path does not match the running instance
}
