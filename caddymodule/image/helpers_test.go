package image

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/spark-edge/spark/internal/testphotos"
)

func photoDir(t testing.TB) string { return filepath.Join(testphotos.Dir(t), "images") }

func readPhoto(t testing.TB, name string) []byte { return testphotos.Read(t, "images", name) }

// testSite is a test Caddyfile: the admin API on 127.0.0.1:ports[0], no
// persisted config, no automatic HTTPS, only errors logged, the global
// options in globals (lines indented with one tab), and one site bound to
// 127.0.0.1:ports[1] with the directives in site (indented with one tab).
func testSite(ports []int, globals, site string) string {
	return `{
	admin 127.0.0.1:` + strconv.Itoa(ports[0]) + `
	persist_config off
	auto_https off
	log {
		level ERROR
	}
` + globals + `}

http://:` + strconv.Itoa(ports[1]) + ` {
	bind 127.0.0.1
` + site + `}
`
}
