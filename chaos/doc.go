// Package chaos holds the fault drills of issue 16 as tests: each starts a
// real stack (two edges of the spark binary on the repository's Caddyfile
// sharing one Redis, the origin on a PostgreSQL+PostGIS cluster of the
// drill's own), drives it at a steady rate, injects one fault and checks
// the promise that fault must keep. `make chaos` runs the long version;
// `go test ./chaos` (and so `make test`) the short one. The package has no
// code outside its tests.
package chaos
