package imageproxy

import (
	"testing"

	"github.com/spark-edge/spark/internal/testphotos"
)

func readPhoto(t testing.TB, name string) []byte { return testphotos.Read(t, "images", name) }

func readBomb(t testing.TB, name string) []byte { return testphotos.Read(t, "bombs", name) }

// photos are the shared photographs with their displayed (EXIF-oriented)
// sizes.
var photos = []struct {
	name string
	w, h int
}{
	{"portrait-hopper-512x600.jpg", 512, 600},
	{"portrait-astronaut-alpha-512x512.png", 512, 512},
	{"flower-xmp-iptc-640x427.jpg", 640, 427},
	{"rain-pentax-k7-3000x1993.jpg", 3000, 1993},
	{"dogs-exif-orient6-3088x2048.jpg", 2048, 3088},
	{"wine-gps-2560x3837.jpg", 2560, 3837},
	{"dandelions-5312x2988.jpg", 5312, 2988},
	{"bird-6028x3391-q80.jpg", 6028, 3391},
}
