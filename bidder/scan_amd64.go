//go:build !purego

package bidder

// hasAVX2 reports whether the CPU and the operating system support AVX2; it is set once,
// at start-up, and only read afterwards.
var hasAVX2 = detectAVX2()

// detectAVX2 asks CPUID for AVX and AVX2, and XGETBV whether the operating system saves
// the YMM registers across context switches.
func detectAVX2() bool {
	const (
		osxsave = 1 << 27 // CPUID.1:ECX
		avx     = 1 << 28 // CPUID.1:ECX
		avx2    = 1 << 5  // CPUID.(7,0):EBX
		ymmSave = 0b110   // XCR0: XMM and YMM state
	)
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	if ecx1&(osxsave|avx) != osxsave|avx || xgetbv0()&ymmSave != ymmSave {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&avx2 != 0
}

// cpuid executes CPUID with the given leaf and subleaf and returns its four registers.
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 returns the low half of XCR0; the caller must have seen CPUID report OSXSAVE.
func xgetbv0() uint32

// markSpecial sets bit j%64 of dst[j/64] when src[j] stops a run of plain string text: a
// quote, a backslash, a control character or a non-ASCII byte; it clears the other bits.
// len(src) must be 64*len(dst). It compares 32 bytes at a time with AVX2 where the CPU
// has it, and 16 at a time with SSE2, which every amd64 CPU has, elsewhere.
func markSpecial(dst []uint64, src []byte) {
	if hasAVX2 {
		markAVX2(dst, src)
	} else {
		markSSE2(dst, src)
	}
}

// markAVX2 is markSpecial with AVX2.
func markAVX2(dst []uint64, src []byte) {
	if len(dst) > 0 {
		_ = src[len(dst)*64-1]
		markSpecialAVX2(&dst[0], &src[0], len(dst))
	}
}

// markSSE2 is markSpecial with SSE2.
func markSSE2(dst []uint64, src []byte) {
	if len(dst) > 0 {
		_ = src[len(dst)*64-1]
		markSpecialSSE2(&dst[0], &src[0], len(dst))
	}
}

// markSpecialFuncs names each implementation of markSpecial that this build can run on
// this CPU, so that tests and benchmarks can compare them.
var markSpecialFuncs = func() map[string]func([]uint64, []byte) {
	funcs := map[string]func([]uint64, []byte){"swar": markSpecialSWAR, "sse2": markSSE2}
	if hasAVX2 {
		funcs["avx2"] = markAVX2
	}
	return funcs
}()

// markSpecialAVX2 is markSpecial over n blocks of 64 bytes at src, writing n words at dst.
//
//go:noescape
func markSpecialAVX2(dst *uint64, src *byte, n int)

// markSpecialSSE2 is markSpecialAVX2 with 16-byte vectors.
//
//go:noescape
func markSpecialSSE2(dst *uint64, src *byte, n int)
