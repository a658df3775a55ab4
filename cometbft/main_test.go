package cometbft_test

import (
	"testing"

	"go.uber.org/goleak"
)

// cometBFTLeaks are the goroutines CometBFT v0.38 leaves behind when a
// full node stops, which nothing outside CometBFT can end: each
// consensus WAL's head file (libs/autofile) keeps its close-timer routine
// and its SIGHUP handler, because the WAL group closes the file, not the
// AutoFile.
var cometBFTLeaks = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/cometbft/cometbft/libs/autofile.(*AutoFile).closeFileRoutine"),
	goleak.IgnoreTopFunction("github.com/cometbft/cometbft/libs/autofile.OpenAutoFile.func1"),
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, cometBFTLeaks...)
}
