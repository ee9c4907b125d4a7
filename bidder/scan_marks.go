package bidder

import (
	"encoding/binary"
	"math/bits"
)

// The scanner finds the end of a string without looking at each of its bytes: markSpecial
// marks, 64 bytes at a time and ahead of the scan, the bytes that stop a run of plain
// string text, and the scan jumps from one mark to the next. The marks of up to markWords
// blocks of the body, the mark window, live in the scan.

// markWords is the size of the mark window in 64-byte blocks of the body.
const markWords = 64

// nextMark returns the index of the first byte at or after i that ends a run of plain
// string text (see markSpecial), or len(body) when there is none. It refills the mark
// window when i has left it.
func (s *scan) nextMark(i int) int {
	for i < len(s.body) {
		off := i - s.markBase
		if uint(off) >= uint(s.markLen) {
			s.fillMarks(i)
			off = i - s.markBase
		}
		if m := s.marks[off>>6&(markWords-1)] >> (off & 63); m != 0 {
			return min(i+bits.TrailingZeros64(m), len(s.body))
		}
		i = (i | 63) + 1 // the window starts on a multiple of 64
	}
	return len(s.body)
}

// fillMarks points the mark window at the 64-byte block holding body[i] and the blocks
// after it. A last partial block is marked from a zero-padded copy, so the padding reads
// as marked bytes past the end of the body.
func (s *scan) fillMarks(i int) {
	base := i &^ 63
	end := min(len(s.body), base+markWords*64)
	full := (end - base) &^ 63
	markSpecial(s.marks[:full>>6], s.body[base:base+full])
	if tail := s.body[base+full : end]; len(tail) > 0 {
		var block [64]byte
		copy(block[:], tail)
		markSpecial(s.marks[full>>6:full>>6+1], block[:])
	}
	s.markBase, s.markLen = base, end-base
}

// markSpecialSWAR is the portable markSpecial: it tests eight bytes at a time in a 64-bit
// word, exactly, so that no borrow from one byte can flag another.
func markSpecialSWAR(dst []uint64, src []byte) {
	src = src[:len(dst)*64]
	for j := range dst {
		block := src[j*64:]
		block = block[:64]
		dst[j] = gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[0:]))) |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[8:])))<<8 |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[16:])))<<16 |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[24:])))<<24 |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[32:])))<<32 |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[40:])))<<40 |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[48:])))<<48 |
			gatherMSB(specialBytes(binary.LittleEndian.Uint64(block[56:])))<<56
	}
}

// specialBytes sets bit 7 of each byte of w that markSpecial marks and clears the rest.
func specialBytes(w uint64) uint64 {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	low := w &^ msb
	text := low + lsb*(0x80-0x20)           // bit 7 set: low 7 bits >= 0x20
	notQuote := (low ^ lsb*'"') + lsb*0x7f  // bit 7 set: low 7 bits differ from '"'
	notSlash := (low ^ lsb*'\\') + lsb*0x7f // bit 7 set: low 7 bits differ from '\\'
	return (text & notQuote & notSlash &^ w & msb) ^ msb
}

// gatherMSB packs bit 7 of each byte of w, which must have no other bits set, into the
// low 8 bits of the result, the first byte's into bit 0.
func gatherMSB(w uint64) uint64 { return w * 0x0002040810204081 >> 56 }
