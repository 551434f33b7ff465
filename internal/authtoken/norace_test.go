//go:build !race

package authtoken

// raceEnabled: the race detector is on (allocation counts differ).
const raceEnabled = false
