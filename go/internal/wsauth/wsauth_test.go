package wsauth

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/testpki"
)

const secret = "s3cr3t-T0ken_value.42"

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	file := testpki.Write(t, dir, "token", []byte("\n  "+secret+"\n"))

	for _, c := range []Config{{Token: secret, AppID: "cam-a"}, {TokenFile: file, AppID: "cam-a"}} {
		cr, err := c.Load()
		if err != nil {
			t.Fatal(err)
		}
		if got := cr.Header.Get("Authorization"); got != "Bearer "+secret {
			t.Errorf("Authorization %q", got)
		}
		if got := cr.Header.Get(AppIDHeader); got != "cam-a" {
			t.Errorf("%s %q", AppIDHeader, got)
		}
		if cr.TLS != nil {
			t.Errorf("a token alone set a TLS config")
		}
	}

	none, err := Config{}.Load()
	if err != nil || len(none.Header) != 0 || none.TLS != nil {
		t.Errorf("zero Config: %v %v %v", none.Header, none.TLS, err)
	}
}

// TestTokenFileRotation: every Load reads the file again.
func TestTokenFileRotation(t *testing.T) {
	dir := t.TempDir()
	file := testpki.Write(t, dir, "token", []byte("old-token"))
	c := Config{TokenFile: file}
	for _, want := range []string{"old-token", "new-token", "newer-token"} {
		if want != "old-token" {
			// Replaced as a deployment tool does it: a new file renamed over the old.
			tmp := testpki.Write(t, dir, "token.tmp", []byte(want+"\n"))
			if err := os.Rename(tmp, file); err != nil {
				t.Fatal(err)
			}
		}
		cr, err := c.Load()
		if err != nil {
			t.Fatal(err)
		}
		if got := cr.Header.Get("Authorization"); got != "Bearer "+want {
			t.Errorf("Authorization %q, want the file's %q", got, want)
		}
	}
}

func TestLoadRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	pair := ca.Client(t, "cam-a")
	other := ca.Client(t, "cam-b")
	caFile := testpki.Write(t, dir, "ca.pem", ca.PEM)
	cert := testpki.Write(t, dir, "client.pem", pair.CertPEM)
	key := testpki.Write(t, dir, "client.key", pair.KeyPEM)
	otherKey := testpki.Write(t, dir, "other.key", other.KeyPEM)
	garbage := testpki.Write(t, dir, "garbage.pem", []byte("not a PEM file\n"))
	empty := testpki.Write(t, dir, "empty", []byte(" \n"))
	spaced := testpki.Write(t, dir, "spaced", []byte("two "+secret+"\n"))
	injected := testpki.Write(t, dir, "injected", []byte(secret+"\r\nX-Evil: 1"))
	big := testpki.Write(t, dir, "big", bytes.Repeat([]byte("a"), maxFileBytes+1))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := testpki.Write(t, dir, "unreadable", []byte(secret))
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"missing token file", Config{TokenFile: missing}, "ws-token-file: open " + missing + ": no such file"},
		{"empty token file", Config{TokenFile: empty}, "the token is empty"},
		{"token with a space", Config{TokenFile: spaced}, "a character a header cannot carry"},
		{"token with CR LF", Config{TokenFile: injected}, "a character a header cannot carry"},
		{"token value with a newline", Config{Token: secret + "\n"}, "DS_WS_TOKEN: the token has a character"},
		{"token file too large", Config{TokenFile: big}, "larger than"},
		{"token file a FIFO", Config{TokenFile: fifo}, "not a regular file"},
		{"token file a directory", Config{TokenFile: dir}, "not a regular file"},
		{"missing CA file", Config{CAFile: missing}, "ws-ca-file: open"},
		{"CA file without PEM", Config{CAFile: garbage}, "ws-ca-file " + garbage + ": no PEM certificate"},
		{"client cert not PEM", Config{ClientCert: garbage, ClientKey: key}, "failed to find any PEM data in certificate input"},
		{"client key not PEM", Config{ClientCert: cert, ClientKey: garbage}, "failed to find any PEM data in key input"},
		{"key of another cert", Config{ClientCert: cert, ClientKey: otherKey}, "private key does not match public key"},
		{"missing client key", Config{ClientCert: cert, ClientKey: missing}, "ws-client-key: open"},
	}
	if os.Geteuid() != 0 { // root reads a mode-0 file
		tests = append(tests, struct {
			name string
			c    Config
			want string
		}{"unreadable token file", Config{TokenFile: unreadable}, "permission denied"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := tc.c.Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Load took %v", d)
			}
		})
	}

	// And the good files together.
	cr, err := Config{CAFile: caFile, ClientCert: cert, ClientKey: key}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.TLS.Certificates) != 1 || cr.TLS.RootCAs == nil {
		t.Fatalf("TLS config %+v", cr.TLS)
	}
	// The private CA is trusted, besides the system roots.
	if _, err := ca.Cert.Verify(x509.VerifyOptions{Roots: cr.TLS.RootCAs}); err != nil {
		t.Errorf("the CA file's certificate is not in RootCAs: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		c      Config
		scheme string
		want   string
	}{
		{Config{Token: "a", TokenFile: "/f"}, "wss", "both set"},
		{Config{ClientCert: "/c"}, "wss", "go together"},
		{Config{ClientKey: "/k"}, "wss", "go together"},
		{Config{CAFile: "/ca"}, "ws", "need a wss:// ws-url"},
		{Config{ClientCert: "/c", ClientKey: "/k"}, "ws", "need a wss:// ws-url"},
		{Config{Token: "a"}, "ws", ""}, // allowed, main warns
		{Config{CAFile: "/ca", ClientCert: "/c", ClientKey: "/k", TokenFile: "/t"}, "wss", ""},
	} {
		err := tc.c.Check(tc.scheme)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%+v, %s) = %v, want %q", tc.c, tc.scheme, err, tc.want)
		}
	}
}

// TestSecretNeverPrinted: a Config printed or encoded by mistake shows no token.
func TestSecretNeverPrinted(t *testing.T) {
	c := Config{Token: secret, AppID: "cam-a"}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Token), string(j)} {
		if strings.Contains(out, secret) || !strings.Contains(out, redacted) {
			t.Errorf("printed as %s", out)
		}
	}
}
