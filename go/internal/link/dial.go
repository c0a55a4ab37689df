package link

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode"

	"github.com/coder/websocket"
)

// RefusedError is a connection attempt that reached the server and got an HTTP answer
// other than 101 Switching Protocols to its upgrade request: 401 or 403 when the server
// does not accept the instance's credentials, 404 for a wrong path. The link retries
// it like any failed attempt (the server may be reconfigured meanwhile).
type RefusedError struct {
	Status string // as the server sent it, e.g. "403 Forbidden"
	Code   int
	Reason string // the start of the response body, when it had one
}

// Error implements error.
func (e *RefusedError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("handshake refused by server: %s: %s", e.Status, e.Reason)
	}
	return "handshake refused by server: " + e.Status
}

// maxReason bounds the part of a refusal's body that is logged.
const maxReason = 200

// attempt is one connection attempt: its dial options and what its TLS handshake
// showed about client certificates.
type attempt struct {
	opts *websocket.DialOptions
	// haveCert: a client certificate is configured; certAsked: the server asked for
	// one; certSent: one was sent (it was from a CA the server accepts).
	haveCert            bool
	certAsked, certSent atomic.Bool
}

// dialOptions returns the options of one connection attempt: the credentials as they
// are now, on a transport of the attempt's own (its TLS configuration may differ from
// the last attempt's). The transport takes no proxy from the environment: the server
// is the instance's own peer.
func (l *Link) dialOptions() (*attempt, error) {
	var hdr http.Header
	var tc *tls.Config
	if l.cfg.Credentials != nil {
		var err error
		if hdr, tc, err = l.cfg.Credentials(); err != nil {
			return nil, err
		}
	}
	at := &attempt{}
	if tc == nil {
		tc = &tls.Config{}
	} else {
		tc = tc.Clone()
	}
	// Chosen as crypto/tls chooses without the callback; the callback only records
	// that the server asked. A server that wants a certificate and gets none may just
	// close the connection after a TLS 1.3 handshake (Python's ssl under uvicorn does):
	// the client then reads EOF, which alone would look like a server gone away.
	certs := tc.Certificates
	tc.Certificates = nil
	at.haveCert = len(certs) > 0
	tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		at.certAsked.Store(true)
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				at.certSent.Store(true)
				return &certs[i], nil
			}
		}
		return &tls.Certificate{}, nil // none acceptable: send none
	}
	tr := &http.Transport{Proxy: nil, DialContext: l.dialer.DialContext, TLSClientConfig: tc}
	// No redirects: net/http would resend the bearer token to a redirect's target on the
	// same host whatever its scheme (wss → http in clear). A 3xx is a refused upgrade.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	at.opts = &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr, CheckRedirect: noRedirect}, HTTPHeader: hdr}
	return at, nil
}

// dialFailed logs a failed connection attempt and returns its error. It tells apart a
// server that answered but refused the upgrade (up, but not accepting these
// credentials), a TLS handshake that failed (a certificate the instance does not
// trust, or a server that wants a client certificate), and a server that could not be
// reached at all.
func (l *Link) dialFailed(err error, resp *http.Response, at *attempt) error {
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		rej := &RefusedError{Status: resp.Status, Code: resp.StatusCode, Reason: bodyReason(resp)}
		ev := l.log.Warn().Int("status", rej.Code).Str("status_text", rej.Status)
		if rej.Reason != "" {
			ev = ev.Str("reason", rej.Reason)
		}
		ev.Msg("link: handshake refused by server")
		return rej
	}
	if at.certAsked.Load() && isDropped(err) {
		what := "the server asked for a client certificate, none is configured (ws-client-cert), and it closed the connection"
		switch {
		case at.certSent.Load():
			what = "the server asked for a client certificate and closed the connection after ours (one it does not trust?)"
		case at.haveCert:
			what = "the server asked for a client certificate of a CA that ws-client-cert is not from, none was sent, and it closed the connection"
		}
		err = fmt.Errorf("%s: %w", what, err)
		l.log.Warn().Err(err).Msg("link: TLS handshake failed")
		return fmt.Errorf("link: TLS: %w", err)
	}
	if isTLSError(err) {
		l.log.Warn().Err(err).Msg("link: TLS handshake failed")
		return fmt.Errorf("link: TLS: %w", err)
	}
	l.log.Warn().Err(err).Msg("link: connect failed")
	return fmt.Errorf("link: dial: %w", err)
}

// isDropped reports a connection the peer ended without an answer. net/http reports a
// connection closed before the request was written with an unexported error, known
// only by its text.
func isDropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "http: server closed idle connection")
}

// isTLSError reports an error of the TLS layer: a server certificate that does not
// verify, an alert from the server (it wants a client certificate, or refused ours), or
// a peer that does not speak TLS.
func isTLSError(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
		alert   tls.AlertError
		op      *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &host),
		errors.As(err, &invalid), errors.As(err, &record), errors.As(err, &alert):
		return true
	case errors.As(err, &op) && op.Op == "remote error": // an alert the server sent
		return true
	}
	return false
}

// bodyReason is the start of a refusal's body (coder/websocket keeps up to 1 KiB of
// it), on one line of printable characters.
func bodyReason(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReason))
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	return strings.TrimSpace(s)
}
