package testutil

import (
	"slices"
	"sync"
	"testing"
)

func TestPathLogRecordsInOrderAndCopies(t *testing.T) {
	var l PathLog
	l.Record("/a")
	l.Record("/b")
	got := l.Paths()
	if !slices.Equal(got, []string{"/a", "/b"}) {
		t.Fatalf("Paths = %v", got)
	}
	got[0] = "/changed"
	if l.Paths()[0] != "/a" {
		t.Fatal("Paths returned the log's own slice")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { l.Record("/c") })
	}
	wg.Wait()
	if n := len(l.Paths()); n != 10 {
		t.Fatalf("%d paths after 8 concurrent records, want 10", n)
	}
}
