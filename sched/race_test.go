//go:build race

package sched

// raceEnabled lets the heaviest tests cut their work under the race
// detector, which slows table building down tenfold.
const raceEnabled = true
