package postgis_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// tcpProxy forwards connections to target until cut: then it closes every
// open connection and refuses new ones, as a replica that went away.
type tcpProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target}
	t.Cleanup(p.Cut)
	go p.serve()
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

// Cut closes the listener and every forwarded connection.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.l.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// replicaURL is the test database URL on schema, reached through proxy.
func replicaURL(t *testing.T, schema string, proxy *tcpProxy) string {
	u, err := url.Parse(pgtest.SchemaURL(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.l.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String()
}

// The replica is a schema of its own with the same users under other
// names, so every read says which database answered it: reads go to the
// replica; a profile written through the store is read back from the
// primary (the "replica", a primary's schema, has no replay position, so
// it never counts as having replayed a write); when the replica goes
// away, reads fall back to the primary, the store stays ready, and the
// fallbacks are counted. The users are made by another origin on the
// primary, so this store has no writes of its own until ann's update.
func TestReplicaReadsFallBackAndReadYourWrites(t *testing.T) {
	ctx := context.Background()
	replica := pgtest.Open(t, "test_replica_lagging")
	target, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, target.Host)
	s := pgtest.OpenWith(t, "test_replica_primary", func(c *postgis.Config) {
		c.ReplicaURL = replicaURL(t, "test_replica_lagging", proxy)
	})
	mk := func(st store.Store, name string) int64 {
		id, err := st.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: name, Age: 30, Gender: "woman", Active: true}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	other, err := postgis.Open(ctx, postgis.Config{URL: pgtest.SchemaURL(t, "test_replica_primary")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ann, bea := mk(other, "ann-primary"), mk(other, "bea-primary")
	if a, b := mk(replica, "ann-replica"), mk(replica, "bea-replica"); a != ann || b != bea {
		t.Fatalf("ids differ between the schemas: %d %d vs %d %d", a, b, ann, bea)
	}
	name := func(id int64) string { return profileName(t, s, id) }
	if n := name(ann); n != "ann-replica" {
		t.Fatalf("profile read from %q, want the replica", n)
	}
	if _, err := s.UpdateProfile(ctx, ann, store.ProfileUpdate{Name: "ann-new", Age: 31, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	if n := name(ann); n != "ann-new" {
		t.Fatalf("after her write ann reads %q: the lagging replica served it", n)
	}
	if n := name(bea); n != "bea-replica" {
		t.Fatalf("bea, not written, read from %q, want the replica", n)
	}

	proxy.Cut()
	if n := name(bea); n != "bea-primary" {
		t.Fatalf("with the replica gone bea reads %q, want the primary's", n)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with the replica gone: %v (the primary serves its reads)", err)
	}
	var fallbacks int64
	for _, p := range s.PoolStats() {
		if p.Name == "replica" {
			fallbacks = p.Fallbacks
		}
	}
	if fallbacks < 1 {
		t.Fatalf("replica fallbacks %d, want at least 1", fallbacks)
	}
	// Resting: the next reads go straight to the primary without trying
	// the replica (no further fallbacks counted).
	for range 20 {
		if n := name(bea); n != "bea-primary" {
			t.Fatalf("resting replica: bea reads %q", n)
		}
	}
	for _, p := range s.PoolStats() {
		if p.Name == "replica" && p.Fallbacks != fallbacks {
			t.Fatalf("fallbacks %d → %d while the replica rests: it was tried", fallbacks, p.Fallbacks)
		}
	}
}

// profileName is the name GetProfile reads for id (which database
// answered, in the replica tests).
func profileName(t *testing.T, s *postgis.Store, id int64) string {
	t.Helper()
	p, err := s.GetProfile(context.Background(), id)
	if err != nil {
		t.Fatalf("profile %d: %v", id, err)
	}
	return p.Name
}

// When more written objects are tracked than the bound (a replica far
// behind under many writes), they fold into one position every read must
// see: a profile nobody wrote, read from the replica before, is read from
// the primary after the fold (the "replica", a primary's schema, never
// reports a replay position, so the fold never lifts here).
func TestReplicaTrackedWritesFold(t *testing.T) {
	ctx := context.Background()
	replica := pgtest.Open(t, "test_replica_fold_r")
	target, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, target.Host)
	s := pgtest.OpenWith(t, "test_replica_fold_p", func(c *postgis.Config) {
		c.ReplicaURL = replicaURL(t, "test_replica_fold_r", proxy)
	})
	s.SetMaxTrackedWrites(2)
	other, err := postgis.Open(ctx, postgis.Config{URL: pgtest.SchemaURL(t, "test_replica_fold_p")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var ids []int64
	for _, n := range []string{"ann", "bea", "cat", "dan"} {
		for _, st := range []*postgis.Store{other, replica} {
			where := map[*postgis.Store]string{other: "-primary", replica: "-replica"}[st]
			id, err := st.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: n + where, Age: 30, Gender: "woman", Active: true}})
			if err != nil {
				t.Fatal(err)
			}
			if st == other {
				ids = append(ids, id)
			}
		}
	}
	dan := ids[3]
	if n := profileName(t, s, dan); n != "dan-replica" {
		t.Fatalf("dan, nobody's write, reads %q before the fold; want the replica", n)
	}
	for i, id := range ids[:2] {
		if _, err := s.UpdateProfile(ctx, id, store.ProfileUpdate{Name: fmt.Sprintf("w%d", i), Age: 30, Gender: "woman", Active: true}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := profileName(t, s, dan); n != "dan-replica" {
		t.Fatalf("dan reads %q with two writes tracked (the bound): want the replica", n)
	}
	if _, err := s.UpdateProfile(ctx, ids[2], store.ProfileUpdate{Name: "w2", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	if n := profileName(t, s, dan); n != "dan-primary" {
		t.Fatalf("dan reads %q after the fold; want the primary (the replica has not shown the newest write)", n)
	}
	for i, id := range ids[:3] {
		if n := profileName(t, s, id); n != fmt.Sprintf("w%d", i) {
			t.Fatalf("written profile %d reads %q after the fold", id, n)
		}
	}
}
