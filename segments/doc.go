// Package segments is segd's in-memory audience domain: the dictionary from keyed ID hashes
// to dense profile ordinals, trait and segment bitmaps, the per-profile forward lists that the
// request path reads, and the rule language that defines segments.
//
// The package does no I/O. Durability belongs to package store, which persists what a Txn
// reports and replays it into a fresh Index at start-up; HTTP belongs to package bidder.
package segments
