package link

import (
	"crypto/subtle"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
	"github.com/cityeyelab/ds-analysis/go/internal/testpki"
	"github.com/cityeyelab/ds-analysis/go/internal/wsauth"
)

// Tests of the link's credentials against real TLS servers (httptest with
// certificates made by testpki): a bearer token, a private CA, a client certificate,
// refusals retried, files rotated on disk.

const goodToken = "good-token-7f3a9c"

// credentials adapts a wsauth.Config as main does.
func credentials(c wsauth.Config) func() (http.Header, *tls.Config, error) {
	return func() (http.Header, *tls.Config, error) {
		cr, err := c.Load()
		return cr.Header, cr.TLS, err
	}
}

// tokenGate refuses an upgrade without a bearer token (401) or with another one than
// want (403), as the reference server does.
func tokenGate(want string) func(*http.Request) (int, string) {
	return func(r *http.Request) (int, string) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case !ok:
			return http.StatusUnauthorized, "missing bearer token"
		case subtle.ConstantTimeCompare([]byte(tok), []byte(want)) != 1:
			return http.StatusForbidden, "token not accepted for this instance"
		}
		return 0, ""
	}
}

// serverTLS is a TLS server configuration with a certificate of ca.
func serverTLS(t *testing.T, ca *testpki.CA) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS(t)}}
}

// replace writes data to path the way a deployment tool rotates a file: a new file
// renamed over the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// TestTokenOverPrivateCA: wss:// to a server whose certificate a private CA signed,
// trusted through the CA file; the token and the APP_ID go with the upgrade request.
func TestTokenOverPrivateCA(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "private CA")
	srv := linktest.New(t, linktest.Options{Gate: tokenGate(goodToken), TLS: serverTLS(t, ca)})
	rec := &logRec{}
	cfg := fast(srv.URL(), rec)
	cfg.Credentials = credentials(wsauth.Config{
		AppID:     "cam-a",
		TokenFile: testpki.Write(t, dir, "token", []byte(goodToken+"\n")),
		CAFile:    testpki.Write(t, dir, "ca.pem", ca.PEM),
	})
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "a confirmed handshake", l.Connected)
	ups := srv.Upgrades()
	if len(ups) != 1 || ups[0].Status != 0 {
		t.Fatalf("upgrades %+v", ups)
	}
	if got := ups[0].Header.Get("Authorization"); got != "Bearer "+goodToken {
		t.Errorf("Authorization %q", got)
	}
	if got := ups[0].Header.Get(wsauth.AppIDHeader); got != "cam-a" {
		t.Errorf("%s %q", wsauth.AppIDHeader, got)
	}
	if strings.Contains(rec.text(), goodToken) {
		t.Errorf("the log shows the token:\n%s", rec.text())
	}
}

// TestRefusedUpgradeRetriedThenRotated: a wrong token is refused (403), then a missing
// one (401); each refusal is logged as such, never as an unreachable server, and
// retried with the backoff; the right token written to the file is used on the next
// attempt.
func TestRefusedUpgradeRetriedThenRotated(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "private CA")
	srv := linktest.New(t, linktest.Options{Gate: tokenGate(goodToken), TLS: serverTLS(t, ca)})
	rec := &logRec{}
	tokenFile := testpki.Write(t, dir, "token", []byte("wrong-token-1\n"))
	cfg := fast(srv.URL(), rec)
	cfg.Credentials = credentials(wsauth.Config{
		AppID: "cam-a", TokenFile: tokenFile, CAFile: testpki.Write(t, dir, "ca.pem", ca.PEM),
	})
	l := start(t, cfg)

	refused := func(code int) int {
		n := 0
		for _, ln := range rec.with("link: handshake refused by server") {
			if ln.fields["status"] == float64(code) {
				n++
			}
		}
		return n
	}
	waitFor(t, 5*time.Second, "three 403 refusals", func() bool { return refused(http.StatusForbidden) >= 3 })
	if l.Connected() {
		t.Fatal("connected with a wrong token")
	}
	line := rec.with("link: handshake refused by server")[0].fields
	if line["status_text"] != "403 Forbidden" || line["reason"] != "token not accepted for this instance" {
		t.Errorf("refusal logged as %v", line)
	}
	if n := len(rec.with("link: backing off before reconnecting")); n < 2 {
		t.Errorf("%d back-offs between refusals", n)
	}

	// An empty file is a credentials error, logged and retried: nothing is sent.
	replace(t, tokenFile, []byte("\n"))
	waitFor(t, 5*time.Second, "the empty token file reported", func() bool {
		return len(rec.with("link: credentials unusable, not connecting")) >= 2
	})

	// The right token, and the time the next connection took.
	replace(t, tokenFile, []byte(goodToken+"\n"))
	rotated := time.Now()
	waitFor(t, 5*time.Second, "a confirmed handshake after the rotation", l.Connected)
	took := time.Since(rotated)
	t.Logf("connected %v after the right token was in the file (backoff cap %v)", took, cfg.BackoffMax)
	if took > cfg.BackoffMax+time.Second {
		t.Errorf("took %v to use the rotated token", took)
	}
	if n := len(rec.with("link: connect failed")); n != 0 {
		t.Errorf("a refusal was logged as an unreachable server %d times", n)
	}
	if strings.Contains(rec.text(), goodToken) || strings.Contains(rec.text(), "wrong-token-1") {
		t.Errorf("the log shows a token:\n%s", rec.text())
	}
	if err := l.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestMissingTokenRefused401: no token at all is a 401, logged with its status.
func TestMissingTokenRefused401(t *testing.T) {
	srv := linktest.New(t, linktest.Options{Gate: tokenGate(goodToken)})
	rec := &logRec{}
	l := start(t, fast(srv.URL(), rec))
	waitFor(t, 5*time.Second, "two 401 refusals", func() bool {
		n := 0
		for _, ln := range rec.with("link: handshake refused by server") {
			if ln.fields["status_text"] == "401 Unauthorized" {
				n++
			}
		}
		return n >= 2
	})
	if l.Connected() {
		t.Fatal("connected without a token")
	}
}

// TestUntrustedServerCertificate: without the CA file the server's certificate does
// not verify; the log names the certificate problem. The CA written to the CA file is
// trusted from the next attempt on.
func TestUntrustedServerCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "private CA")
	other := testpki.NewCA(t, "another CA")
	srv := linktest.New(t, linktest.Options{TLS: serverTLS(t, ca)})
	rec := &logRec{}
	caFile := testpki.Write(t, dir, "ca.pem", other.PEM)
	cfg := fast(srv.URL(), rec)
	cfg.Credentials = credentials(wsauth.Config{CAFile: caFile})
	l := start(t, cfg)

	waitFor(t, 5*time.Second, "two TLS failures", func() bool { return len(rec.with("link: TLS handshake failed")) >= 2 })
	msg, _ := rec.with("link: TLS handshake failed")[0].fields["error"].(string)
	if !strings.Contains(msg, "x509: certificate signed by unknown authority") {
		t.Errorf("TLS failure logged as %q", msg)
	}
	if l.Connected() {
		t.Fatal("connected to an untrusted server")
	}
	replace(t, caFile, ca.PEM)
	rotated := time.Now()
	waitFor(t, 5*time.Second, "a confirmed handshake with the right CA", l.Connected)
	t.Logf("connected %v after the right CA was in the file", time.Since(rotated))
}

// TestClientCertificate: a server that requires a client certificate of its CA
// refuses a client without one (and one of another CA) at the TLS layer; the right
// certificate and key, written over the files, connect.
func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "private CA")
	tc := serverTLS(t, ca)
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.ClientCAs = ca.Pool()
	srv := linktest.New(t, linktest.Options{TLS: tc})
	caFile := testpki.Write(t, dir, "ca.pem", ca.PEM)

	t.Run("no client certificate", func(t *testing.T) {
		rec := &logRec{}
		cfg := fast(srv.URL(), rec)
		cfg.Credentials = credentials(wsauth.Config{CAFile: caFile})
		l := start(t, cfg)
		waitFor(t, 5*time.Second, "two TLS failures", func() bool { return len(rec.with("link: TLS handshake failed")) >= 2 })
		msg, _ := rec.with("link: TLS handshake failed")[0].fields["error"].(string)
		if !strings.Contains(msg, "certificate required") {
			t.Errorf("TLS failure logged as %q", msg)
		}
		if l.Connected() {
			t.Fatal("connected without a client certificate")
		}
	})

	t.Run("rotated to the right certificate", func(t *testing.T) {
		stranger := testpki.NewCA(t, "stranger").Client(t, "cam-a")
		cert := testpki.Write(t, dir, "client.pem", stranger.CertPEM)
		key := testpki.Write(t, dir, "client.key", stranger.KeyPEM)
		rec := &logRec{}
		cfg := fast(srv.URL(), rec)
		cfg.Credentials = credentials(wsauth.Config{CAFile: caFile, ClientCert: cert, ClientKey: key})
		l := start(t, cfg)
		waitFor(t, 5*time.Second, "two TLS failures", func() bool { return len(rec.with("link: TLS handshake failed")) >= 2 })
		msg, _ := rec.with("link: TLS handshake failed")[0].fields["error"].(string)
		if !strings.Contains(msg, "remote error: tls:") {
			t.Errorf("TLS failure logged as %q", msg)
		}
		good := ca.Client(t, "cam-a")
		// Key first: until the certificate follows, the pair does not match and the
		// attempt is a credentials error, not a crash.
		replace(t, key, good.KeyPEM)
		waitFor(t, 5*time.Second, "the mismatched pair reported", func() bool {
			for _, ln := range rec.with("link: credentials unusable, not connecting") {
				if e, _ := ln.fields["error"].(string); strings.Contains(e, "private key does not match public key") {
					return true
				}
			}
			return false
		})
		replace(t, cert, good.CertPEM)
		rotated := time.Now()
		waitFor(t, 5*time.Second, "a confirmed handshake with the client certificate", l.Connected)
		t.Logf("connected %v after the right certificate was in place", time.Since(rotated))
	})
}

// TestRefusedAndDownTellApart: a port where nothing listens is logged as a failed
// connect, never as a refusal.
func TestRefusedAndDownTellApart(t *testing.T) {
	rec := &logRec{}
	start(t, fast("ws://127.0.0.1:1/ws", rec))
	waitFor(t, 5*time.Second, "two failed connects", func() bool { return len(rec.with("link: connect failed")) >= 2 })
	msg, _ := rec.with("link: connect failed")[0].fields["error"].(string)
	if !strings.Contains(msg, "connection refused") {
		t.Errorf("connect failure logged as %q", msg)
	}
	if n := len(rec.with("link: handshake refused by server")) + len(rec.with("link: TLS handshake failed")); n != 0 {
		t.Errorf("an unreachable server logged as a refusal or a TLS failure %d times", n)
	}
}

// TestClientCertificateSilentClose: a server that asks for a client certificate and
// then closes the connection without a TLS alert (as Python's ssl does under uvicorn
// with --ssl-cert-reqs 2) is logged as a TLS failure about the client certificate,
// not as a server gone away.
func TestClientCertificateSilentClose(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "private CA")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	tc := &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS(t)},
		ClientAuth: tls.RequestClientCert, ClientCAs: ca.Pool()}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = tls.Server(c, tc).Handshake()
			c.Close() // the TCP connection itself: no close_notify, no answer
		}
	}()
	url := "wss://" + ln.Addr().String() + "/ws"
	caFile := testpki.Write(t, dir, "ca.pem", ca.PEM)
	good, stranger := ca.Client(t, "cam-a"), testpki.NewCA(t, "stranger").Client(t, "cam-a")

	for _, tc := range []struct {
		name string
		pair *testpki.Pair
		want string
	}{
		{"none configured", nil, "the server asked for a client certificate, none is configured (ws-client-cert)"},
		{"of another CA", &stranger, "of a CA that ws-client-cert is not from, none was sent"},
		{"sent", &good, "closed the connection after ours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wsauth.Config{CAFile: caFile}
			if tc.pair != nil {
				c.ClientCert = testpki.Write(t, dir, "c.pem", tc.pair.CertPEM)
				c.ClientKey = testpki.Write(t, dir, "c.key", tc.pair.KeyPEM)
			}
			rec := &logRec{}
			cfg := fast(url, rec)
			cfg.Credentials = credentials(c)
			l := start(t, cfg)
			waitFor(t, 5*time.Second, "two TLS failures", func() bool { return len(rec.with("link: TLS handshake failed")) >= 2 })
			msg, _ := rec.with("link: TLS handshake failed")[0].fields["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("TLS failure logged as %q, want %q", msg, tc.want)
			}
			if n := len(rec.with("link: connect failed")); n != 0 {
				t.Errorf("logged as an unreachable server %d times: %v", n, rec.with("link: connect failed")[0].fields["error"])
			}
			if err := l.stop(t); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

// TestRedirectNotFollowed: a server that answers the upgrade with a redirect is a
// refusal; the token is never sent to where it points (net/http would resend it to
// the same host whatever the scheme).
func TestRedirectNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "nothing here", http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rec := &logRec{}
	cfg := fast("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", rec)
	cfg.Credentials = credentials(wsauth.Config{Token: wsauth.Secret(goodToken)})
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "two refusals", func() bool {
		n := 0
		for _, ln := range rec.with("link: handshake refused by server") {
			if ln.fields["status"] == float64(http.StatusTemporaryRedirect) {
				n++
			}
		}
		return n >= 2
	})
	if l.Connected() {
		t.Fatal("connected through a redirect")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 0 {
		t.Fatalf("the redirect was followed, Authorization %q", leaked)
	}
}
