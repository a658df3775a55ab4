package poller

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTuningRulesHold checks the relations between tuning constants that
// their rules state (see tuning.go), so that changing one alone fails here
// rather than quietly disabling a rule.
func TestTuningRulesHold(t *testing.T) {
	// While the walks show a network no larger than our book, the share we
	// miss comes from the mark-recapture estimate alone, which counts for
	// at most estimateTrust times our book: the stall rule can fire only
	// if that share can exceed stallMiss.
	require.Greater(t, float64(estimateTrust), 1/(1-float64(stallMiss)))
	// The wait that falls with the share of news meets the saturated one.
	require.Equal(t, float64(maxSlowdown), 1/float64(minShare))
}
