package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/segd/segd/segments"
)

func TestProfileCodecRoundTrip(t *testing.T) {
	tests := []segments.ProfileRecord{
		{Profile: 0},
		{Profile: 7, IDs: []uint64{1, 1<<64 - 1}},
		{Profile: 1<<32 - 1, IDs: []uint64{42}, Traits: []segments.Membership{
			{Trait: 0, Until: 1}, {Trait: 300, Until: 1<<32 - 1}, {Trait: 1<<32 - 1, Until: 5},
		}},
	}
	for _, rec := range tests {
		b := appendProfile(nil, rec)
		got, err := decodeProfile(rec.Profile, b)
		if err != nil {
			t.Fatalf("decode %+v: %v", rec, err)
		}
		if len(rec.IDs) == 0 {
			rec.IDs = []uint64{}
		}
		if len(rec.Traits) == 0 {
			rec.Traits = []segments.Membership{}
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("round trip of %+v = %+v", rec, got)
		}
	}
}

func TestDecodeProfileCorrupt(t *testing.T) {
	good := appendProfile(nil, segments.ProfileRecord{IDs: []uint64{1, 2},
		Traits: []segments.Membership{{Trait: 3, Until: 4}}})
	for n := range len(good) {
		if _, err := decodeProfile(1, good[:n]); !errors.Is(err, errCorrupt) {
			t.Errorf("record cut to %d bytes: %v, want errCorrupt", n, err)
		}
	}
	if _, err := decodeProfile(1, append(good, 0)); !errors.Is(err, errCorrupt) {
		t.Errorf("record with a trailing byte: %v, want errCorrupt", err)
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	if _, err := decodeProfile(1, huge); !errors.Is(err, errCorrupt) {
		t.Errorf("record with a huge ID count: %v, want errCorrupt", err)
	}
}

// FuzzDecodeProfile checks that no stored bytes make the decoder panic, and that whatever
// it accepts encodes back to the same bytes.
func FuzzDecodeProfile(f *testing.F) {
	f.Add(appendProfile(nil, segments.ProfileRecord{IDs: []uint64{9},
		Traits: []segments.Membership{{Trait: 1, Until: 2}}}))
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeProfile(3, b)
		if err != nil {
			return
		}
		if again := appendProfile(nil, rec); !bytes.Equal(again, b) {
			// Non-minimal varints decode but re-encode shorter; anything else is a bug.
			if _, err := decodeProfile(3, again); err != nil {
				t.Fatalf("re-encoded %x does not decode: %v", again, err)
			}
		}
	})
}
