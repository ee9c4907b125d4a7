//go:build !amd64 || purego

package bidder

// markSpecial sets bit j%64 of dst[j/64] when src[j] stops a run of plain string text: a
// quote, a backslash, a control character or a non-ASCII byte; it clears the other bits.
// len(src) must be 64*len(dst). This build has no vector routine, so it is
// markSpecialSWAR.
func markSpecial(dst []uint64, src []byte) { markSpecialSWAR(dst, src) }

// markSpecialFuncs names each implementation of markSpecial that this build can run, so
// that tests and benchmarks can compare them.
var markSpecialFuncs = map[string]func([]uint64, []byte){"swar": markSpecialSWAR}
