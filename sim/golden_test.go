package sim

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden runs in testdata/golden")

// goldenRuns are small deterministic runs of every scenario whose figures
// are checked in: a pure move of code leaves them byte-identical, and a
// change of behaviour shows as a diff that its commit explains. Regenerate
// with
//
//	go test ./sim -run TestGolden -update
var goldenRuns = []Options{
	{Scenario: ScenarioCold, Nodes: 200, Seed: 1},
	{Scenario: ScenarioCold, Nodes: 200, Seed: 2},
	{Scenario: ScenarioCold, Nodes: 200, Seed: 3},
	{Scenario: ScenarioCold, Nodes: 150, Seed: 1, Policy: PolicyBaseline},
	{Scenario: ScenarioJoin, Nodes: 2000, Seed: 1},
	{Scenario: ScenarioJoin, Nodes: 2000, Seed: 2},
	{Scenario: ScenarioGrowth, Nodes: 150, Seed: 1},
	{Scenario: ScenarioChurn, Nodes: 150, Seed: 1},
	{Scenario: ScenarioChurn, Nodes: 150, Seed: 2},
	{Scenario: ScenarioPartition, Nodes: 200, Seed: 1},
	{Scenario: ScenarioPartition, Nodes: 200, Seed: 2},
	{Scenario: ScenarioSybil, Nodes: 150, Seed: 1, Limit: 2 * time.Minute},
	{Scenario: ScenarioSybil, Nodes: 120, Seed: 2, Attackers: 0.3, Limit: 2 * time.Minute},
	{Scenario: ScenarioFlood, Nodes: 150, Seed: 1, Limit: 2 * time.Minute},
	{Scenario: ScenarioFlood, Nodes: 150, Seed: 2, Attackers: 0.3, Limit: 2 * time.Minute},
}

func goldenName(o Options) string {
	name := fmt.Sprintf("%s-%d-seed%d", o.Scenario, o.Nodes, o.Seed)
	if o.Attackers > 0 {
		name += fmt.Sprintf("-attackers%.0f", 100*o.Attackers)
	}
	if o.Policy != PolicyPex {
		name += "-" + o.Policy.String()
	}
	return name + ".json"
}

func TestGolden(t *testing.T) {
	for _, o := range goldenRuns {
		t.Run(goldenName(o), func(t *testing.T) {
			t.Parallel()
			r, err := Run(o)
			require.NoError(t, err)
			out := r.Summary(false)
			out["messages"] = r.Messages
			got, err := json.MarshalIndent(out, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", goldenName(o))
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden run: regenerate with -update")
			require.Equal(t, string(want), string(got), "behaviour changed: if that is meant, regenerate with -update and say why in the commit")
		})
	}
}
