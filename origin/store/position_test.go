package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func TestParsePosition(t *testing.T) {
	for _, c := range []struct {
		in   string
		want store.Position
	}{
		{"0/0", 0},
		{"0/1", 1},
		{"16/B374D848", 0x16_B374D848},
		{"16/b374d848", 0x16_B374D848},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFF_FFFFFFFF},
		{"00000001/00000000", 1 << 32},
	} {
		got, err := store.ParsePosition(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePosition(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "/", "16", "16/", "/1", "1/2/3", "g/1", "1/-1", "+1/1", "1/ 1",
		"123456789/1", "1/123456789", "0x1/1", "16/B374D848\n"} {
		if p, err := store.ParsePosition(in); err == nil {
			t.Errorf("ParsePosition(%q) = %d, want an error", in, p)
		}
	}
}

// FuzzParsePosition: every position parsed formats back to the same
// number, in PostgreSQL's spelling (upper-case digits aside), and every
// formatted position parses.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/", "a/b/c", "00000000001/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := store.ParsePosition(s)
		if err != nil {
			return
		}
		q, err := store.ParsePosition(p.String())
		if err != nil || q != p {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, p, p.String(), q, err)
		}
		hi, lo, _ := strings.Cut(s, "/")
		if strings.TrimLeft(hi, "0") == "" && strings.TrimLeft(lo, "0") == "" && p != 0 {
			t.Fatalf("%q is zero, parsed %d", s, p)
		}
	})
}

func TestSessionAdvancesOnly(t *testing.T) {
	s := store.NewSession(100)
	s.Advance(50)
	if got := s.After(); got != 100 {
		t.Fatalf("after advancing to a lower position: %d, want 100", got)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Advance(store.Position(200 + i)) }()
	}
	wg.Wait()
	if got := s.After(); got != 263 {
		t.Fatalf("after concurrent advances: %d, want the highest, 263", got)
	}
	var none *store.Session
	none.Advance(5) // nil-safe: a request without a session
	if none.After() != 0 {
		t.Fatal("a nil session must read after no position")
	}
	ctx := store.WithSession(context.Background(), s)
	if store.SessionFrom(ctx) != s || store.SessionFrom(context.Background()) != nil {
		t.Fatal("SessionFrom does not return the session WithSession stored")
	}
}
