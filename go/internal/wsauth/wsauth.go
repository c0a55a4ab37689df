// Package wsauth reads the credentials an instance presents to FastAPI on each
// WebSocket connection: a bearer token (the upgrade request's Authorization header),
// a private CA trusted besides the system roots, and a client certificate for mutual
// TLS. Load reads the files again at every call, so that a token, CA bundle or
// certificate replaced on disk is used from the next connection attempt on, without a
// restart. Nothing here prints a secret: errors name files, never their contents.
package wsauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
)

// AppIDHeader carries the instance's APP_ID on every upgrade request, so that a server
// can check a token against the instance it belongs to before it accepts the
// WebSocket (app_ready, which names the instance too, only comes after).
const AppIDHeader = "X-DS-App-Id"

// maxFileBytes bounds what is read of one credential file: a token, a key, a
// certificate chain or a CA bundle is far smaller.
const maxFileBytes = 1 << 20

// Secret is a string that must not be printed: its String, GoString and JSON forms are
// "[redacted]" (a settings struct logged by mistake shows no token).
type Secret string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redacted }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Config names the credentials. The zero value presents none.
type Config struct {
	// AppID is sent in AppIDHeader when not empty.
	AppID string
	// Token is a fixed bearer token (DS_WS_TOKEN); TokenFile a file holding one
	// (surrounding white space ignored), read at every Load. At most one of them.
	Token     Secret
	TokenFile string
	// CAFile is a PEM bundle of certificates trusted besides the system roots.
	CAFile string
	// ClientCert and ClientKey are PEM files of a client certificate (chain) and its
	// private key, for servers that require one. Both or neither.
	ClientCert, ClientKey string
}

// Credentials is what one connection attempt presents.
type Credentials struct {
	// Header holds the extra headers of the upgrade request.
	Header http.Header
	// TLS is the client TLS configuration of a wss:// connection; nil when no TLS
	// option is set (the system roots, no client certificate).
	TLS *tls.Config
}

// HasToken reports whether a bearer token is configured.
func (c Config) HasToken() bool { return c.Token != "" || c.TokenFile != "" }

// HasTLS reports whether a TLS option (CA or client certificate) is configured.
func (c Config) HasTLS() bool { return c.CAFile != "" || c.ClientCert != "" || c.ClientKey != "" }

// Check reports settings that cannot work together, without reading any file: a token
// both as a value and as a file, a certificate without its key (or the reverse), TLS
// options with a scheme other than wss.
func (c Config) Check(scheme string) error {
	if c.Token != "" && c.TokenFile != "" {
		return errors.New("DS_WS_TOKEN and ws-token-file are both set: give the token one way")
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return errors.New("ws-client-cert and ws-client-key go together: give both or neither")
	}
	if c.HasTLS() && scheme != "wss" && scheme != "https" {
		return fmt.Errorf("ws-ca-file and ws-client-cert need a wss:// ws-url, not %s://", scheme)
	}
	return nil
}

// Load reads the configured files and returns the credentials of one connection
// attempt. A token that is empty or holds a character a header cannot carry, a file
// that is missing, unreadable, not a regular file or larger than 1 MiB, a bundle
// without a certificate, a certificate without PEM data or with a key that does not
// match it: each is an error naming the file.
func (c Config) Load() (Credentials, error) {
	cr := Credentials{Header: http.Header{}}
	if c.AppID != "" {
		cr.Header.Set(AppIDHeader, c.AppID)
	}
	if c.HasToken() {
		tok := string(c.Token)
		where := "DS_WS_TOKEN"
		if c.TokenFile != "" {
			b, err := readSmall(c.TokenFile)
			if err != nil {
				return Credentials{}, fmt.Errorf("ws-token-file: %w", err)
			}
			tok, where = strings.TrimSpace(string(b)), "ws-token-file "+c.TokenFile
		}
		if err := checkToken(tok); err != nil {
			return Credentials{}, fmt.Errorf("%s: %w", where, err)
		}
		cr.Header.Set("Authorization", "Bearer "+tok)
	}
	if !c.HasTLS() {
		return cr, nil
	}
	cr.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		b, err := readSmall(c.CAFile)
		if err != nil {
			return Credentials{}, fmt.Errorf("ws-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool() // no system roots here: the private CA alone
		}
		if !pool.AppendCertsFromPEM(b) {
			return Credentials{}, fmt.Errorf("ws-ca-file %s: no PEM certificate in it", c.CAFile)
		}
		cr.TLS.RootCAs = pool
	}
	if c.ClientCert != "" {
		certPEM, err := readSmall(c.ClientCert)
		if err != nil {
			return Credentials{}, fmt.Errorf("ws-client-cert: %w", err)
		}
		keyPEM, err := readSmall(c.ClientKey)
		if err != nil {
			return Credentials{}, fmt.Errorf("ws-client-key: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// crypto/tls names the problem ("private key does not match public key",
			// "failed to find any PEM data in key input"), never the key's bytes.
			return Credentials{}, fmt.Errorf("ws-client-cert %s with ws-client-key %s: %w", c.ClientCert, c.ClientKey, err)
		}
		cr.TLS.Certificates = []tls.Certificate{pair}
	}
	return cr, nil
}

// checkToken accepts a token that a header can carry as `Bearer <token>`: not empty,
// visible ASCII only (no space, no control character that could end the header).
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("the token is empty")
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return fmt.Errorf("the token has a character a header cannot carry (byte %d of %d: space, control or non-ASCII)", i+1, len(tok))
		}
	}
	return nil
}

// readSmall reads a regular file of at most maxFileBytes. It opens without blocking,
// so that a FIFO with no writer fails at once instead of holding a reconnect up.
func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileBytes)
	}
	return b, nil
}
