package testphotos

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFindsTheSharedPhotos(t *testing.T) {
	b := Read(t, "images", "portrait-hopper-512x600.jpg")
	if !bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) {
		t.Fatalf("portrait-hopper-512x600.jpg does not start as a JPEG: % x", b[:min(len(b), 4)])
	}
	want, err := os.ReadFile(filepath.Join(Dir(t), "images", "portrait-hopper-512x600.jpg"))
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("Read differs from the file under Dir (%v)", err)
	}
}
