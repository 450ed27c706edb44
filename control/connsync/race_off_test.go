//go:build !race

package connsync

const raceSlowdown = 1
