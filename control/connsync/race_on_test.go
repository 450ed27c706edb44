//go:build race

package connsync

// raceSlowdown scales timing bounds: the race detector makes channel, atomic and memory operations
// several times slower.
const raceSlowdown = 10
