package segments

// SplitWorkForTest makes work over profiles split between cores from n profiles up, so that
// tests over small indexes take the parallel paths too, until the returned func is called.
func SplitWorkForTest(n uint32) (restore func()) {
	old := coreShare
	coreShare = n
	return func() { coreShare = old }
}
