// Package deploy holds the checks of the operator's files next to it: the
// Grafana dashboard and the Prometheus rules name only metrics a running
// edge or origin exports (parsed with Prometheus' own PromQL parser),
// promtool accepts the rules and their unit tests pass, systemd accepts the
// units, and the compose file is well formed and consistent.
//
// It is its own Go module so that the Prometheus server module the parser
// comes from never enters the spark binary's dependency graph. It imports
// nothing from the spark module: it builds cmd/spark and runs it.
package deploy
