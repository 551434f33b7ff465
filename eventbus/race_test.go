//go:build race

package eventbus

// raceEnabled: the race detector is on (allocation counts differ).
const raceEnabled = true
