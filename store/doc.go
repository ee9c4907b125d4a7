// Package store keeps segd's data durable in Badger: the key layout, durable batches, the
// onboarding import stream, expiry sweeps, and rebuilding the in-memory index at start-up.
//
// Every change is written to Badger, synced, and only then published to the index, so the
// index can always be rebuilt from the store. The package never handles HTTP or OpenRTB.
package store
