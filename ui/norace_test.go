//go:build !race

package ui

// raceEnabled tells timing tests that the race detector slows everything.
const raceEnabled = false
