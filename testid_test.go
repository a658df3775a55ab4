package pex

// testID is a valid node ID for tests; testIDUpper is it in uppercase.
const (
	testID      = "0123456789abcdef0123456789abcdef01234567"
	testIDUpper = "0123456789ABCDEF0123456789ABCDEF01234567"
)
