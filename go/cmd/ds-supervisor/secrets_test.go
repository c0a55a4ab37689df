package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
	"github.com/cityeyelab/ds-analysis/go/internal/testpki"
)

// tokenServer is a wss:// FastAPI that refuses an upgrade without the bearer token
// (403, as uvicorn answers a WebSocket closed before accept).
func tokenServer(t *testing.T, ca *testpki.CA, token string) *linktest.Server {
	return linktest.New(t, linktest.Options{
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS(t)}},
		Gate: func(r *http.Request) (int, string) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				return http.StatusForbidden, ""
			}
			return 0, ""
		},
	})
}

// TestSecretsStayOut runs the supervisor (re-exec included) with the real engine
// against a wss:// server that wants a token, the token given as a value
// (DS_WS_TOKEN) and as a file: it connects, and the token is in no command line, not
// in the engine's environment, the log or the instance dir. The supervisor's own
// initial environment holds DS_WS_TOKEN when it was given so (the launcher put it
// there), never the file's token.
func TestSecretsStayOut(t *testing.T) {
	engine := gstEngine(t)
	dir := shortDir(t, "sec")
	cfg := writeFile(t, dir, "app.txt", engineConfig, 0o644)
	ca := testpki.NewCA(t, "private CA")
	caFile := testpki.Write(t, dir, "ca.pem", ca.PEM)

	for _, tc := range []struct {
		name, appID, token string
		env                func(token string) []string
	}{
		{"token value", "secval", "value-tok-3e1d0b7c", func(tok string) []string { return []string{"DS_WS_TOKEN=" + tok} }},
		{"token file", "secfile", "file-tok-9a8b7c6d", func(tok string) []string {
			return []string{"DS_WS_TOKEN_FILE=" + testpki.Write(t, dir, "token", []byte(tok+"\n"))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tokenServer(t, ca, tc.token)
			var stderr bytes.Buffer
			cmd := supervisorCmd(dir, tc.appID, engine, &stderr, "-c", cfg)
			cmd.Env = append(cmd.Env, append(tc.env(tc.token), "DS_WS_URL="+srv.URL(), "DS_WS_CA_FILE="+caFile)...)
			p := startSupervisor(t, cmd, &stderr, dir, tc.appID)
			enginePID := p.enginePID(t)
			deadline := time.Now().Add(20 * time.Second)
			for len(srv.Hellos()) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no app_ready at the server; stderr %s", stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if auth := srv.Upgrades()[0].Header.Get("Authorization"); auth != "Bearer "+tc.token {
				t.Errorf("the server saw Authorization %q", auth)
			}

			read := func(path string) string {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			supPID := cmd.Process.Pid
			if c := read(fmt.Sprintf("/proc/%d/cmdline", supPID)); !strings.Contains(c, "APP_ID="+tc.appID) || strings.Contains(c, tc.token) {
				t.Errorf("supervisor command line %q", c)
			}
			for _, f := range []string{"cmdline", "environ"} {
				// (Not printed: an environment may hold other secrets.)
				if c := read(fmt.Sprintf("/proc/%d/%s", enginePID, f)); strings.Contains(c, tc.token) || strings.Contains(c, "DS_WS_TOKEN=") {
					t.Errorf("engine %s holds the token", f)
				}
			}
			supEnv := read(fmt.Sprintf("/proc/%d/environ", supPID))
			if inEnv := strings.Contains(supEnv, tc.token); inEnv != strings.HasPrefix(tc.env("")[0], "DS_WS_TOKEN=") {
				t.Errorf("supervisor environment holds the token: %v", inEnv)
			}
			p.stop(t)
			var files []string
			for _, root := range []string{filepath.Join(dir, "logs"), p.instDir} {
				_ = filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
					if err == nil && info.Mode().IsRegular() {
						files = append(files, path)
					}
					return nil
				})
			}
			if len(files) < 2 {
				t.Fatalf("log and instance files: %q", files)
			}
			for _, f := range append(files, "stderr") {
				text := stderr.String()
				if f != "stderr" {
					text = read(f)
				}
				if strings.Contains(text, tc.token) {
					t.Errorf("%s holds the token", f)
				}
			}
		})
	}
}

// TestExitBadCredentials: unusable credential files stop the start with status 2 and
// one line naming the problem, never the token.
func TestExitBadCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "app.txt", slotConfig, 0o644)
	ca := testpki.NewCA(t, "private CA")
	a, b := ca.Client(t, "a"), ca.Client(t, "b")
	spaced := testpki.Write(t, dir, "spaced", []byte("tok en-5c4d3e2f\n"))
	junk := testpki.Write(t, dir, "junk.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	cert := testpki.Write(t, dir, "a.pem", a.CertPEM)
	keyB := testpki.Write(t, dir, "b.key", b.KeyPEM)
	web := testpki.Write(t, dir, "web.yml", []byte("basic_auth_users:\n  prom: not-a-hash\n"))
	wss := []string{"--ws-url", "wss://127.0.0.1:1/ws"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing token file", []string{"--ws-token-file", filepath.Join(dir, "none")}, "ws-token-file: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"token with a space", []string{"--ws-token-file", spaced}, "ws-token-file " + spaced + ": the token has a character a header cannot carry"},
		{"bad CA PEM", append(wss, "--ws-ca-file", junk), "ws-ca-file " + junk + ": no PEM certificate in it"},
		{"key of another cert", append(wss, "--ws-client-cert", cert, "--ws-client-key", keyB), "private key does not match public key"},
		{"bad web config", []string{"--metrics-addr", "127.0.0.1:0", "--metrics-web-config", web}, "metrics-web-config " + web + ": crypto/bcrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := supervisorCmd(dir, "badcred", "/bin/true", &stderr, append([]string{"-c", cfg}, tc.args...)...).Run()
			if code := exitCode(t, err); code != exitSettings {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.Contains(out, tc.want) || strings.Contains(out, "en-5c4d3e2f") {
				t.Errorf("stderr %q, want one line with %q", out, tc.want)
			}
		})
	}
}
