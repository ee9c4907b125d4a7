//go:build race

package bidder_test

func init() { raceEnabled = true }
