package chaos

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
)

// photoTmpfsSize is the size of the photo directory's file system: small,
// so the drill fills it in a moment.
const photoTmpfsSize = "16m"

// photoTmpfs mounts a tmpfs of its own for the origin's photo originals, so
// the disk-full drill fills that file system and no other. Mounting needs
// root (as make test-deps does); without it the test fails saying so.
func photoTmpfs(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spark-chaos-photos-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+photoTmpfsSize+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		_ = os.Remove(dir)
		t.Fatalf("mount a %s tmpfs for the disk-full drill (needs root, as make test-deps): %v %s", photoTmpfsSize, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
			return
		}
		_ = os.Remove(dir)
	})
	return dir
}

// fillDisk writes a filler file in dir until its file system is full and
// returns the file's path.
func fillDisk(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "chaos-filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	// What a smaller write still fits, too.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return p
}

// drillDiskFull: the photo directory's file system is full under load.
// Uploads are refused with 507 (or 503) as a problem; every other request
// is answered as before; once space is freed uploads work again.
func drillDiskFull(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "photo disk full"}
	photo, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(t), "loadtest", "scenarios", "photo.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	upload := func(e int, user int64) outcome {
		o := doBytes(ctx, tr.client, s.edges[e].URL(), "POST", "/api/users/me/photos", tr.tokens[user], "image/jpeg", photo)
		o.op, o.edge = "upload", e
		return o
	}
	// Before: an upload works (and is deleted again, to keep the count low).
	if o := upload(0, firstWriter); o.status != http.StatusCreated {
		t.Fatalf("upload before the disk is full: %s %q", o.kind, o.body)
	}
	filler := fillDisk(t, s.photoDir)
	var uploads []outcome
	var mu sync.Mutex
	var freed time.Time
	var recovery time.Duration
	outs := phases(p, tr.mix(0.1, -1), func() {
		for i := 0; i < 20; i++ {
			o := upload(i%2, int64(firstWriter+i%10))
			mu.Lock()
			uploads = append(uploads, o)
			mu.Unlock()
		}
		if err := os.Remove(filler); err != nil {
			t.Errorf("free the photo disk: %v", err)
		}
		freed = time.Now()
		recovery = until(t, freed, 30*time.Second, "an upload accepted after the disk was freed", func() bool {
			return upload(0, firstWriter+1).status == http.StatusCreated
		})
	})
	r.tally(outs)
	r.tally(uploads)
	for _, f := range failures(outs, func(o outcome) bool { return o.kind != "" }) {
		t.Errorf("a request other than an upload failed while the photo disk was full: %s", f)
	}
	for _, o := range uploads {
		if (o.status != http.StatusInsufficientStorage && o.status != http.StatusServiceUnavailable) || o.ctype != "application/problem+json" {
			t.Errorf("an upload to a full disk: %s %q (%s), want a 507 or 503 problem", o.kind, truncate(o.body, 200), o.ctype)
		}
	}
	cell, problems := tr.checkWrites(time.Time{}, 0)
	for _, pr := range problems {
		t.Error(pr)
	}
	r.acked = cell
	r.recovery = "uploads accepted " + ms(recovery) + " after space was freed"
	return r
}

// doBytes is do with a binary body of content type ctype; any 2xx is good.
func doBytes(ctx context.Context, c *http.Client, base, method, path, tok, ctype string, body []byte) outcome {
	o := outcome{op: method, key: path, start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		o.kind = "bad request: " + err.Error()
		return o
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", ctype)
	res, err := c.Do(req)
	if err != nil {
		o.dur, o.kind = time.Since(o.start), errKind(err)
		return o
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	o.dur = time.Since(o.start)
	o.status, o.ctype, o.body = res.StatusCode, res.Header.Get("Content-Type"), string(b)
	if res.StatusCode >= 300 {
		o.kind = "http " + http.StatusText(res.StatusCode)
	}
	return o
}
