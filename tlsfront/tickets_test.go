package tlsfront

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
)

func TestTicketsResumeAcrossConfigsAndRotation(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	crt := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	tickets := NewTickets(time.Hour)
	defer tickets.Stop()
	old := ServerConfig(bindTLS(t, "", crt), tickets, "fe")
	addrOld := serve(t, old)
	cache := tls.NewLRUClientSessionCache(8)
	client := &tls.Config{ServerName: "api.example.org", RootCAs: ca.Pool(), ClientSessionCache: cache}
	if _, st, err := handshake(addrOld, client); err != nil || st.DidResume {
		t.Fatalf("first handshake: %v, resumed %v", err, st.DidResume)
	}
	// A reload builds a new config: the ticket still opens.
	addrNew := serve(t, ServerConfig(bindTLS(t, "", crt), tickets, "fe"))
	if _, st, err := handshake(addrNew, client); err != nil || !st.DidResume {
		t.Fatalf("after a reload: %v, resumed %v (want a resumption)", err, st.DidResume)
	}
	// Within TicketKeep rotations a ticket still opens; past them not.
	fresh := tls.NewLRUClientSessionCache(8)
	client = &tls.Config{ServerName: "api.example.org", RootCAs: ca.Pool(), ClientSessionCache: fresh}
	if _, _, err := handshake(addrNew, client); err != nil {
		t.Fatal(err)
	}
	for range TicketKeep - 1 {
		tickets.Rotate()
	}
	if _, st, err := handshake(addrNew, client); err != nil || !st.DidResume {
		t.Fatalf("after %d rotations: %v, resumed %v (want a resumption)", TicketKeep-1, err, st.DidResume)
	}
	stale := tls.NewLRUClientSessionCache(8)
	client = &tls.Config{ServerName: "api.example.org", RootCAs: ca.Pool(), ClientSessionCache: stale}
	if _, _, err := handshake(addrNew, client); err != nil {
		t.Fatal(err)
	}
	for range TicketKeep {
		tickets.Rotate()
	}
	if _, st, err := handshake(addrNew, client); err != nil || st.DidResume {
		t.Fatalf("after %d rotations: %v, resumed %v (want a full handshake)", TicketKeep, err, st.DidResume)
	}
}

// anyNameCache gives the client's last session for any server name, as a
// client trying to carry a ticket to another name or bind would.
type anyNameCache struct{ last *tls.ClientSessionState }

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) { return c.last, c.last != nil }
func (c *anyNameCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.last = cs
	}
}

// TestTicketsStayOnTheirBind: a ticket resumes on the bind that issued it
// only, and on a strict-sni bind only for a name it has a certificate for.
func TestTicketsStayOnTheirBind(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	crt := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	tickets := NewTickets(time.Hour)
	defer tickets.Stop()
	a := serve(t, ServerConfig(bindTLS(t, "", crt), tickets, "fe-a 127.0.0.1:443"))
	b := serve(t, ServerConfig(bindTLS(t, "", crt), tickets, "fe-b 127.0.0.1:443"))
	cache := &anyNameCache{}
	client := &tls.Config{ServerName: "api.example.org", RootCAs: ca.Pool(), ClientSessionCache: cache}
	if _, _, err := handshake(a, client); err != nil {
		t.Fatal(err)
	}
	if _, st, err := handshake(a, client); err != nil || !st.DidResume {
		t.Fatalf("the same bind: %v, resumed %v", err, st.DidResume)
	}
	if _, st, err := handshake(b, client); err != nil || st.DidResume {
		t.Errorf("another bind: %v, resumed %v (want a full handshake)", err, st.DidResume)
	}

	strict := serve(t, ServerConfig(bindTLS(t, "        strict-sni: true\n", crt), tickets, "fe-strict 127.0.0.1:443"))
	cache.last = nil
	if _, _, err := handshake(strict, client); err != nil {
		t.Fatal(err)
	}
	other := &tls.Config{ServerName: "evil.example.net", InsecureSkipVerify: true, ClientSessionCache: cache}
	if _, st, err := handshake(strict, other); err == nil {
		t.Errorf("strict-sni let a resumption in under an unknown name (resumed %v)", st.DidResume)
	}
}
