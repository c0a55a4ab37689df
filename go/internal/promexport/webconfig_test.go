package promexport

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/cityeyelab/ds-analysis/go/internal/testpki"
)

// Tests of the metrics port with an exporter-toolkit web configuration file: TLS
// with a private CA, basic auth with bcrypt hashes, a client CA.

// webConfig writes a web configuration file in dir: the server certificate and key of
// pair, basic-auth user prom with password's bcrypt hash, and extra YAML under
// tls_server_config.
func webConfig(t *testing.T, dir string, pair testpki.Pair, password, tlsExtra string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	testpki.Write(t, dir, "server.pem", pair.CertPEM)
	testpki.Write(t, dir, "server.key", pair.KeyPEM)
	// Paths relative to the file, as the toolkit resolves them.
	yml := fmt.Sprintf("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n%sbasic_auth_users:\n  prom: %s\n", tlsExtra, hash)
	return testpki.Write(t, dir, "web.yml", []byte(yml))
}

// client returns an HTTPS client that trusts ca, with certs as its client certificates.
func client(ca *testpki.CA, certs ...tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
}

func fetch(t *testing.T, c *http.Client, url, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "metrics CA")
	cfg := webConfig(t, dir, ca.Server(t), "right-pass", "")
	if err := CheckWebConfig(cfg); err != nil {
		t.Fatal(err)
	}
	src := &fakeLoop{s: Snapshot{Ready: true}}
	addr := serveWith(t, src, cfg)
	c := client(ca)

	code, body := fetch(t, c, "https://"+addr+"/metrics", "prom", "right-pass")
	if code != 200 || !strings.Contains(body, `ds_analysis_ready{app_id="cam_a"} 1`) {
		t.Fatalf("scrape with the right password: %d %s", code, body)
	}
	promtool(t, body)
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, _ := fetch(t, c, "https://"+addr+probe, "prom", "right-pass"); code != 200 {
			t.Errorf("%s with the right password: %d", probe, code)
		}
	}
	for _, cred := range [][2]string{{"prom", "wrong-pass"}, {"nobody", "right-pass"}, {"", ""}} {
		code, body := fetch(t, c, "https://"+addr+"/metrics", cred[0], cred[1])
		if code != http.StatusUnauthorized || strings.Contains(body, "ds_analysis") {
			t.Errorf("user %q password %q: %d %s", cred[0], cred[1], code, body)
		}
	}
	// Plain HTTP gets the TLS server's 400, and nothing of the figures.
	code, body = fetch(t, http.DefaultClient, "http://"+addr+"/metrics", "prom", "right-pass")
	if code != http.StatusBadRequest || strings.Contains(body, "ds_analysis") {
		t.Errorf("plain HTTP: %d %s", code, body)
	}
	// An untrusted client refuses the certificate.
	if _, err := http.Get("https://" + addr + "/metrics"); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("a client without the CA: %v", err)
	}

	// The toolkit reads the file for each request: a new password needs no restart.
	webConfig(t, dir, ca.Server(t), "rotated-pass", "")
	if code, _ := fetch(t, c, "https://"+addr+"/metrics", "prom", "rotated-pass"); code != 200 {
		t.Errorf("the rotated password: %d", code)
	}
	if code, _ := fetch(t, c, "https://"+addr+"/metrics", "prom", "right-pass"); code != http.StatusUnauthorized {
		t.Errorf("the old password after the rotation: %d", code)
	}
}

func TestWebConfigClientCA(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "metrics CA")
	testpki.Write(t, dir, "clients.pem", ca.PEM)
	cfg := webConfig(t, dir, ca.Server(t), "pw", "  client_ca_file: clients.pem\n  client_auth_type: RequireAndVerifyClientCert\n")
	addr := serveWith(t, &fakeLoop{s: Snapshot{Ready: true}}, cfg)

	if _, err := client(ca).Get("https://" + addr + "/metrics"); err == nil {
		t.Error("a client without a certificate was served")
	}
	c := client(ca, ca.Client(t, "prometheus").TLS(t))
	if code, body := fetch(t, c, "https://"+addr+"/metrics", "prom", "pw"); code != 200 {
		t.Errorf("with a client certificate: %d %s", code, body)
	}
}

func TestCheckWebConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "metrics CA")
	good := ca.Server(t)
	other := ca.Server(t)
	write := func(name, yml string) string { return testpki.Write(t, dir, name, []byte(yml)) }
	testpki.Write(t, dir, "s.pem", good.CertPEM)
	testpki.Write(t, dir, "s.key", good.KeyPEM)
	testpki.Write(t, dir, "o.key", other.KeyPEM)
	testpki.Write(t, dir, "junk.pem", []byte("junk"))

	for _, tc := range []struct{ name, yml, want string }{
		{"unknown key", "tls_server_config:\n  certfile: s.pem\n", "field certfile not found"},
		{"not YAML", "{{{", "yaml"},
		{"missing cert", "tls_server_config:\n  cert_file: none.pem\n  key_file: s.key\n", "none.pem"},
		{"key of another cert", "tls_server_config:\n  cert_file: s.pem\n  key_file: o.key\n", "private key does not match public key"},
		{"cert not PEM", "tls_server_config:\n  cert_file: junk.pem\n  key_file: s.key\n", "failed to find any PEM data"},
		{"key without cert", "tls_server_config:\n  key_file: s.key\n", "missing one of cert or cert_file"},
		{"password not a bcrypt hash", "basic_auth_users:\n  prom: plain-text\n", "bcrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWebConfig(write(strings.ReplaceAll(tc.name, " ", "-")+".yml", tc.yml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckWebConfig: %v, want %q", err, tc.want)
			}
		})
	}
	if err := CheckWebConfig(filepath.Join(dir, "absent.yml")); err == nil || !os.IsNotExist(err) {
		t.Errorf("a missing file: %v", err)
	}
}
