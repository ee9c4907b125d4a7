package segments

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Hasher turns raw IDs into keyed 64-bit hashes with SipHash-2-4, so that raw values never
// need to be kept. The key is derived from the configured secret; without the secret the
// hashes cannot be linked back to IDs. A Hasher is immutable and safe for concurrent use.
type Hasher struct {
	k0, k1 uint64
}

// NewHasher derives a Hasher from secret. The same secret always gives the same hashes.
func NewHasher(secret []byte) Hasher {
	sum := sha256.Sum256(append([]byte("segd id key v1\x00"), secret...))
	return Hasher{
		k0: binary.LittleEndian.Uint64(sum[0:8]),
		k1: binary.LittleEndian.Uint64(sum[8:16]),
	}
}

// Fingerprint returns a value that identifies the key without revealing it. The store keeps
// it to refuse a restart with a different secret, which would silently orphan every ID.
func (h Hasher) Fingerprint() uint64 {
	return h.Sum([]byte("segd fingerprint"))
}

// Sum returns the keyed hash of b. It never returns 0, which the dictionary reserves for
// empty slots.
func (h Hasher) Sum(b []byte) uint64 {
	v0 := h.k0 ^ 0x736f6d6570736575
	v1 := h.k1 ^ 0x646f72616e646f6d
	v2 := h.k0 ^ 0x6c7967656e657261
	v3 := h.k1 ^ 0x7465646279746573

	n := len(b)
	for len(b) >= 8 {
		m := binary.LittleEndian.Uint64(b)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		b = b[8:]
	}

	last := uint64(n) << 56
	for i := len(b) - 1; i >= 0; i-- {
		last |= uint64(b[i]) << (8 * uint(i))
	}
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last

	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	sum := v0 ^ v1 ^ v2 ^ v3
	if sum == 0 {
		sum = 1
	}
	return sum
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
