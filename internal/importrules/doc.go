// Package importrules holds the test that enforces the import rules of
// ../shared/ARCHITECTURE.md ("Import rules"): which package of the module
// may import which. It has no code of its own; a change that breaks a rule
// fails `make test` here, and the map and this test change together.
package importrules
